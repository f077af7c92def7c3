// ulc's CPU host runtime: the device of the shared host runtime (backends/native/cpp/ulc_serve.h, which holds
// the schedule, the arena's layout and the protocol). The arena is host memory; a graph runs its launches in
// order, each kernel parallel over its outputs with OpenMP.
#include <sys/sysinfo.h>

#include <algorithm>
#include <chrono>

#include "ulc_cpu.h"
#include "ulc_serve.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using ulc::Failure;
using ulc::mib;

class CpuDevice {
 public:
  static constexpr bool emulated = false;

  /** The processor, its threads and its memory. (Ranks on one machine share it: `local` picks nothing.) */
  static std::string open(uint64_t* total, int /*local*/) {
    struct sysinfo info;
    *total = sysinfo(&info) == 0 ? (uint64_t)info.totalram * info.mem_unit : 0;
#ifdef _OPENMP
    const int threads = omp_get_max_threads();
#else
    const int threads = 1;
#endif
    return "CPU, " + std::to_string(threads) + (threads == 1 ? " thread, " : " threads, ") + mib(*total);
  }

  explicit CpuDevice(ulc::Schedule s) : schedule_(std::move(s)), profile_(std::getenv("ULC_PROFILE")) {}
  ~CpuDevice() {
    std::free(arena_.base());
    if (profile_ != nullptr) report();
  }

  void alloc(uint64_t fixed) {
    const uint64_t size = arena_.lay_out(fixed, schedule_.scratch);
    void* base = std::aligned_alloc(ulc::kAlign, ulc::align(size));
    if (base == nullptr)
      throw Failure("out of memory: the arena needs " + mib(size) + " (" + mib(ulc::align(fixed)) + " of parameters, state and inputs, " +
                    mib(schedule_.scratch) + " of intermediates): try a smaller batch (--bind B=...)");
    arena_.place(static_cast<unsigned char*>(base));
  }

  void write(uint64_t offset, const void* data, uint64_t n) { std::memcpy(arena_.at(offset, n), data, n); }
  void read(uint64_t offset, void* data, uint64_t n) { std::memcpy(data, arena_.at(offset, n), n); }
  void copy(uint64_t dst, uint64_t src, uint64_t n) { std::memmove(arena_.at(dst, n), arena_.at(src, n), n); }
  void sync() {}

  void launch(uint32_t graph, const unsigned* words, const std::vector<uint64_t>& pinned) {
    if (graph >= schedule_.graphs.size()) throw Failure("no graph " + std::to_string(graph));
    const auto& g = schedule_.graphs[graph];
    const std::vector<void*> address = arena_.addresses(g, pinned);
    unsigned* rng = arena_.rng();
    rng[0] = words[0];
    rng[1] = words[1];
    std::vector<void*> bound;
    for (const auto& l : g.launches) {
      bound.clear();
      for (int b : l.buffers) bound.push_back(address[b]);
      if (profile_ == nullptr) {
        l.kernel->run(bound.data(), rng);
        continue;
      }
      const auto start = std::chrono::steady_clock::now();
      l.kernel->run(bound.data(), rng);
      auto& [ms, calls] = spent_[l.kernel->name];
      ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      calls += 1;
    }
  }

  /** Host memory for `n` bytes of transfers, valid until the next call. */
  unsigned char* staging(uint64_t n) {
    if (n > staging_.size()) staging_.resize(n);
    return staging_.data();
  }

  double time(uint32_t graph, uint32_t seed, uint32_t step, const std::vector<uint64_t>& pinned, uint32_t repeats) {
    const unsigned words[2] = {seed, step};
    launch(graph, words, pinned);  // warms up caches and workspaces
    const auto start = std::chrono::steady_clock::now();
    for (uint32_t i = 0; i < repeats; ++i) launch(graph, words, pinned);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / (repeats > 0 ? repeats : 1);
  }

 private:
  /** ULC_PROFILE=FILE: each kernel's total time and calls, written to FILE at exit, the slowest first. */
  void report() const {
    FILE* out = std::fopen(profile_, "w");
    if (out == nullptr) return;
    std::vector<std::pair<std::string, std::pair<double, long>>> rows(spent_.begin(), spent_.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    double total = 0;
    for (const auto& r : rows) total += r.second.first;
    std::fprintf(out, "ulc profile: %.1f ms in %zu kernels\n", total, rows.size());
    for (const auto& [name, t] : rows) std::fprintf(out, "%10.2f ms %6.1f%% %8ld calls  %s\n", t.first, 100 * t.first / total, t.second, name.c_str());
    std::fclose(out);
  }

  ulc::Schedule schedule_;
  ulc::Arena arena_;
  std::vector<unsigned char> staging_;
  const char* const profile_;
  std::map<std::string, std::pair<double, long>> spent_;
};

}  // namespace

int main(int argc, char** argv) { return ulc::main<CpuDevice>(argc, argv); }
