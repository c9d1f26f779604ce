// Closes the wave file that the harness opened with $dumpfile/$dumpvars (a bounded wave
// window, cosim/harness.py). Verilator ignores $dumpoff, so the harness calls this DPI
// function instead; it closes the model's own trace the way the model does at exit.
// Compiled only into models built with waves (cocotb's prefix Vtop).
#include "svdpi.h"
#include "verilated.h"
#include "verilated_syms.h"
#include "Vtop__Syms.h"

extern "C" void hpt_trace_stop() {
    auto* scope = static_cast<const VerilatedScope*>(svGetScope());
    static_cast<Vtop__Syms*>(scope->symsp())->_traceDumpClose();
}
