// Native Verilator run of a generated harness (cosim/harness.py): the same Verilated
// model and the same program the cocotb driver stages, with a C++ main instead of
// Python. Loads the staged buffer words from argv[1], toggles start, runs the timed
// simulation until done toggles, and prints one JSON line with the rate.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "Vcore.h"
#include "verilated.h"

extern uint32_t hpt_buf[];
extern uint32_t hpt_buf_words;

int main(int argc, char** argv) {
    if (argc < 2) { std::fprintf(stderr, "usage: bench BUFFER.bin [REPEATS]\n"); return 2; }
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 1;
    FILE* f = std::fopen(argv[1], "rb");
    if (!f) { std::perror(argv[1]); return 2; }
    size_t n = std::fread(hpt_buf, sizeof(uint32_t), hpt_buf_words, f);
    std::fclose(f);
    std::vector<uint32_t> image(hpt_buf, hpt_buf + n);

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vcore>(ctx.get());
    // The same loop as cocotb's Verilator main: evaluate, then jump to the next time slot
    // with an event; `stop` says when to return (checked once per time slot).
    auto run_until = [&](auto stop) {
        while (!ctx->gotFinish() && !stop()) {
            top->eval();
            if (!top->eventsPending()) break;
            ctx->time(top->nextTimeSlot());
        }
    };
    top->rst = 1; top->start = 0; top->stall = 0; top->seed = 1;
    run_until([&] { return ctx->time() >= 20000; });
    top->rst = 0;
    run_until([&] { return ctx->time() >= 30000; });
    double seconds = 0;
    uint64_t cycles = 0, active = 0;
    for (int r = 0; r < repeats; r++) {
        std::copy(image.begin(), image.end(), hpt_buf);
        const uint8_t done0 = top->done;
        top->start = !top->start;
        auto t0 = std::chrono::steady_clock::now();
        run_until([&] { return top->done != done0; });
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cycles += top->cycles;
        active += top->active;
    }
    std::printf("{\"cycles\": %llu, \"active\": %llu, \"seconds\": %.6f, \"cycles_per_s\": %.1f}\n",
                (unsigned long long)cycles, (unsigned long long)active, seconds, cycles / seconds);
    return 0;
}
