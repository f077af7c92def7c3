// ulc's CUDA host runtime: the device of the shared host runtime (backends/native/cpp/ulc_serve.h, which holds
// the schedule, the arena's layout and the protocol). The first run of a graph with a given placement of its
// pinned buffers is captured into a CUDA Graph; later runs replay it.
#include "ulc_cuda.cuh"
#include "ulc_serve.h"

#ifndef ULC_ARCH
#define ULC_ARCH "unknown"
#endif

namespace {

using ulc::Failure;
using ulc::mib;

/** Errors after which the CUDA context is unusable: every later call fails the same way. */
bool sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

void check(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return;
  const std::string message = what + ": " + cudaGetErrorString(e);
  if (sticky(e)) throw ulc::DeviceLost(message);
  throw Failure(message);
}

class CudaDevice {
 public:
#ifdef ULC_EMULATE
  static constexpr bool emulated = true;
#else
  static constexpr bool emulated = false;
#endif

  /**
   * This rank's GPU (the ranks of a machine take its GPUs in turn), or a Failure saying plainly why it cannot run
   * this program.
   */
  static std::string open(uint64_t* total, int local) {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
      throw Failure(std::string("no CUDA GPU is usable here (") + (e != cudaSuccess ? cudaGetErrorString(e) : "no device") + ")");
    const int gpu = local % count;
    check(cudaSetDevice(gpu), "selecting GPU " + std::to_string(gpu));
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, gpu), "reading the GPU's properties");
    *total = p.totalGlobalMem;
    const std::string device = std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " + mib(p.totalGlobalMem) + ")";
    // A build without code for this GPU (no SASS for its architecture, no PTX it can compile) has no image.
    cudaFuncAttributes a;
    if (ulc_kernel_count > 0 && cudaFuncGetAttributes(&a, ulc_kernels[0].function) != cudaSuccess) {
      cudaGetLastError();
      throw Failure("this program was built for " ULC_ARCH ", which the GPU " + device + " cannot run: rebuild with --arch sm_" +
                    std::to_string(p.major) + std::to_string(p.minor));
    }
    return device;
  }

  explicit CudaDevice(ulc::Schedule s) : schedule_(std::move(s)) { check(cudaStreamCreate(&stream_), "creating a stream"); }

  void alloc(uint64_t fixed) {
    const uint64_t size = arena_.lay_out(fixed, schedule_.scratch);
    unsigned char* base = nullptr;
    if (cudaMalloc(reinterpret_cast<void**>(&base), size) != cudaSuccess) {
      cudaGetLastError();
      size_t free = 0, total = 0;
      cudaMemGetInfo(&free, &total);
      throw Failure("out of device memory: the arena needs " + mib(size) + " (" + mib(ulc::align(fixed)) + " of parameters, state and inputs, " +
                    mib(schedule_.scratch) + " of intermediates); the GPU has " + mib(free) + " free of " + mib(total) +
                    ": try a smaller batch (--bind B=...)");
    }
    arena_.place(base);
  }

  void write(uint64_t offset, const void* data, uint64_t n) { check(cudaMemcpyAsync(arena_.at(offset, n), data, n, cudaMemcpyHostToDevice, stream_), "copying to the device"); }
  void read(uint64_t offset, void* data, uint64_t n) { check(cudaMemcpyAsync(data, arena_.at(offset, n), n, cudaMemcpyDeviceToHost, stream_), "copying from the device"); }
  void copy(uint64_t dst, uint64_t src, uint64_t n) { check(cudaMemcpyAsync(arena_.at(dst, n), arena_.at(src, n), n, cudaMemcpyDeviceToDevice, stream_), "copying on the device"); }
  void sync() { check(cudaStreamSynchronize(stream_), "running on the device"); }

  /** Enqueues the copy of the {seed, step} words (pinned host memory) and the graph (captured on its first run with these offsets). */
  void launch(uint32_t graph, const unsigned* words, const std::vector<uint64_t>& pinned) {
    check(cudaMemcpyAsync(arena_.rng(), words, 2 * sizeof(unsigned), cudaMemcpyHostToDevice, stream_), "copying the seed");
    cudaGraphExec_t exec = executable(graph, pinned);
    if (exec != nullptr) check(cudaGraphLaunch(exec, stream_), "launching graph " + schedule_.graphs.at(graph).name);
  }

  /** Pinned host memory for `n` bytes of transfers, valid until the next call. */
  unsigned char* staging(uint64_t n) {
    if (n > staging_size_) {
      sync();
      if (staging_ != nullptr) cudaFreeHost(staging_);
      check(cudaMallocHost(reinterpret_cast<void**>(&staging_), n), "allocating pinned host memory");
      staging_size_ = n;
    }
    return staging_;
  }

  double time(uint32_t graph, uint32_t seed, uint32_t step, const std::vector<uint64_t>& pinned, uint32_t repeats) {
    unsigned* words = reinterpret_cast<unsigned*>(staging(2 * sizeof(unsigned)));
    words[0] = seed;
    words[1] = step;
    launch(graph, words, pinned);  // captures, and warms up
    sync();
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "creating an event");
    check(cudaEventCreate(&stop), "creating an event");
    check(cudaEventRecord(start, stream_), "recording an event");
    for (uint32_t i = 0; i < repeats; ++i) check(cudaGraphLaunch(executable(graph, pinned), stream_), "launching a graph");
    check(cudaEventRecord(stop, stream_), "recording an event");
    check(cudaEventSynchronize(stop), "running on the device");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "timing");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms / repeats;
  }

 private:
  cudaGraphExec_t executable(uint32_t index, const std::vector<uint64_t>& pinned) {
    if (index >= schedule_.graphs.size()) throw Failure("no graph " + std::to_string(index));
    auto key = std::make_pair(index, pinned);
    auto hit = cache_.find(key);
    if (hit != cache_.end()) return hit->second;
    const auto& g = schedule_.graphs[index];
    const std::vector<void*> address = arena_.addresses(g, pinned);
    cudaGraphExec_t exec = nullptr;
    if (!g.launches.empty()) {
      check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "capturing graph " + g.name);
      std::vector<void*> bound;
      for (const auto& l : g.launches) {
        bound.clear();
        for (int b : l.buffers) bound.push_back(address[b]);
        l.kernel->launch(bound.data(), arena_.rng(), stream_);
        check(cudaGetLastError(), std::string("launching ") + l.kernel->name + " in graph " + g.name);
      }
      cudaGraph_t captured;
      check(cudaStreamEndCapture(stream_, &captured), "capturing graph " + g.name);
      check(cudaGraphInstantiate(&exec, captured, 0), "instantiating graph " + g.name);
      cudaGraphDestroy(captured);
    }
    cache_.emplace(std::move(key), exec);
    return exec;
  }

  ulc::Schedule schedule_;
  cudaStream_t stream_ = nullptr;
  ulc::Arena arena_;
  unsigned char* staging_ = nullptr;
  uint64_t staging_size_ = 0;
  std::map<std::pair<uint32_t, std::vector<uint64_t>>, cudaGraphExec_t> cache_;
};

}  // namespace

int main(int argc, char** argv) { return ulc::main<CudaDevice>(argc, argv); }
