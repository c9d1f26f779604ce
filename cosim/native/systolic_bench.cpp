// Native Verilator benchmark of the systolic core: a C++ loop clocks the model directly.
//
// It runs the same per-tile command sequence as the co-simulation (LOAD_AB of BENCH_K
// vectors, COMPUTE, READ of all rows) for BENCH_TILES tiles and prints one JSON line.
// Command words come from Python (hw.systolic.pack_command) as -D defines, so the bit
// layout is never written twice.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "Vcore.h"
#include "verilated.h"
#include "bench_ports.h"

// Verilator escapes the double underscore of Amaranth's port names as ___05F.

int main(int argc, char** argv) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vcore>(ctx.get());
    uint64_t cycles = 0;
    auto tick = [&]() {
        top->clk = 1; top->eval();
        top->clk = 0; top->eval();
        cycles++;
    };
    std::mt19937 rng(1);
    const int aw = (BENCH_ROWS * BENCH_IN_WIDTH + 31) / 32, bw = (BENCH_COLS * BENCH_IN_WIDTH + 31) / 32;
    std::vector<uint32_t> a(size_t(BENCH_K) * aw), b(size_t(BENCH_K) * bw);
    for (auto& x : a) x = rng();
    for (auto& x : b) x = rng();

    top->rst = 1; top->clk = 0; top->eval(); tick(); tick(); top->rst = 0; top->eval();
    uint64_t checksum = 0;
    auto t0 = std::chrono::steady_clock::now();
    const uint64_t c0 = cycles;
    for (long tile = 0; tile < BENCH_TILES; tile++) {
        const uint64_t cmds[3] = {BENCH_CMD_LOAD, BENCH_CMD_COMPUTE, BENCH_CMD_READ};
        for (int c = 0; c < 3; c++) {
            top->cmd___05Fpayload = cmds[c]; top->cmd___05Fvalid = 1; top->eval();
            while (!top->cmd___05Fready) tick();
            tick();
            top->cmd___05Fvalid = 0;
            if (c == 0) {
                // valid stays high for the whole LOAD, so the ready settled by the
                // previous eval is current; only the first vector needs an extra eval.
                top->a___05Fvalid = 1; top->b___05Fvalid = 1; top->eval();
                for (int k = 0; k < BENCH_K; k++) {
                    set_words(top->a___05Fpayload, &a[size_t(k) * aw], aw);
                    set_words(top->b___05Fpayload, &b[size_t(k) * bw], bw);
                    while (!top->a___05Fready) tick();
                    tick();
                }
                top->a___05Fvalid = 0; top->b___05Fvalid = 0;
            } else if (c == 2) {
                top->result___05Fready = 1;
                for (int r = 0; r < BENCH_ROWS; r++) {
                    top->eval();
                    while (!top->result___05Fvalid) tick();
                    checksum += word0(top->result___05Fpayload);
                    tick();
                }
                top->result___05Fready = 0;
            }
        }
    }
    top->eval();
    while (top->busy) tick();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const uint64_t n = cycles - c0;
    std::printf("{\"cycles\": %llu, \"seconds\": %.6f, \"cycles_per_s\": %.1f, \"tiles\": %ld, "
                "\"checksum\": %llu}\n", (unsigned long long)n, secs, n / secs, (long)BENCH_TILES,
                (unsigned long long)checksum);
    top->final();
    return 0;
}
