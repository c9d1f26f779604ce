// Port helpers shared by the native benchmark harnesses: Verilator gives ports up to 64
// bits as plain integers and wider ones as VlWide<N>; these overloads treat both alike.
#pragma once
#include <cstdint>
#include <random>

#include "verilated.h"

template <typename T>
static void set_words(T& port, const uint32_t* w, int nw) {
    uint64_t v = 0;
    for (int i = 0; i < nw && i < 2; i++) v |= uint64_t(w[i]) << (32 * i);
    port = T(v);
}
template <std::size_t N>
static void set_words(VlWide<N>& port, const uint32_t* w, int nw) {
    for (std::size_t i = 0; i < N; i++) port[i] = int(i) < nw ? w[i] : 0;
}
template <typename T>
static void randomize(T& port, std::mt19937& rng) { port = T(rng()); }
template <std::size_t N>
static void randomize(VlWide<N>& port, std::mt19937& rng) {
    for (std::size_t i = 0; i < N; i++) port[i] = rng();
}
template <typename T>
static uint32_t word0(const T& port) { return uint32_t(port); }
template <std::size_t N>
static uint32_t word0(const VlWide<N>& port) { return port[0]; }
