// Shared word buffer between Python (numpy, through ctypes) and the simulated RTL.
//
// The co-simulation harnesses read operands and commands from `hpt_buf` and write
// results back through the two DPI functions below, so a whole tile program moves in
// one numpy copy each way instead of one Python call per word. The model is linked with
// -rdynamic so that ctypes.CDLL(None) finds these symbols in the simulator process.
#include <cstdint>

#ifndef HPT_BUF_WORDS
#define HPT_BUF_WORDS (1u << 24)  // 64 MiB of 32-bit words; untouched pages cost nothing
#endif

extern "C" {
uint32_t hpt_buf[HPT_BUF_WORDS];
uint32_t hpt_buf_words = HPT_BUF_WORDS;  // not const: const would make it file-local

int hpt_rd(int addr) { return int(hpt_buf[uint32_t(addr) % HPT_BUF_WORDS]); }
void hpt_wr(int addr, int data) { hpt_buf[uint32_t(addr) % HPT_BUF_WORDS] = uint32_t(data); }
}
