// Native Verilator benchmark of the ReRAM tile: program once, then many MVMs.
//
// Command words come from Python (hw.reram.pack_tile_command) as -D defines. Prints
// one JSON line with the MVM phase's rate.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>

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
    top->rst = 1; top->clk = 0; top->eval(); tick(); tick(); top->rst = 0; top->eval();

    auto command = [&](uint64_t bits) {
        top->cmd___05Fpayload = bits; top->cmd___05Fvalid = 1; top->eval();
        while (!top->cmd___05Fready) tick();
        tick();
        top->cmd___05Fvalid = 0;
    };
    command(BENCH_CMD_PROGRAM);
    for (int r = 0; r < BENCH_ROWS; r++) {
        randomize(top->w___05Fpayload, rng);
        top->w___05Fvalid = 1; top->eval();
        while (!top->w___05Fready) tick();
        tick();
    }
    top->w___05Fvalid = 0; top->eval();
    while (top->busy) tick();

    uint64_t checksum = 0;
    const uint64_t c0 = cycles;
    auto t0 = std::chrono::steady_clock::now();
    for (long v = 0; v < BENCH_MVMS; v += BENCH_BATCH) {
        command(BENCH_CMD_MVM);                    // BENCH_BATCH vectors per command
        for (int k = 0; k < BENCH_BATCH; k++) {
            randomize(top->vin___05Fpayload, rng);
            top->vin___05Fvalid = 1; top->eval();
            while (!top->vin___05Fready) tick();
            tick();
            top->vin___05Fvalid = 0;
            top->vout___05Fready = 1; top->eval();
            while (!top->vout___05Fvalid) tick();
            checksum += word0(top->vout___05Fpayload);
            tick();
            top->vout___05Fready = 0;
        }
        top->eval();
        while (top->busy) tick();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const uint64_t n = cycles - c0;
    std::printf("{\"mvms\": %ld, \"cycles\": %llu, \"seconds\": %.6f, \"mvm_per_s\": %.2f, "
                "\"cycles_per_s\": %.1f, \"checksum\": %llu}\n", (long)BENCH_MVMS,
                (unsigned long long)n, secs, BENCH_MVMS / secs, n / secs,
                (unsigned long long)checksum);
    top->final();
    return 0;
}
