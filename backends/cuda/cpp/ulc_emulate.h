// CUDA on the CPU: compiling a ulc CUDA program with `g++ -include ulc_emulate.h -x c++` runs the same .cu text
// without a GPU, so that tests check its numerics against the reference interpreter.
//
// Device side. Blocks run in parallel on a pool of OS threads (one per core), each block on one of them.
// The threads of a block that never synchronise run one after another, as a plain loop. The threads of a
// cooperative block (ulc_launch's flag: the kernel calls __syncthreads or a warp shuffle) run as fibers on the
// block's OS thread: each runs until its next barrier, and once every live thread is there, they all resume
// (a thread that has returned counts as arrived, as on the GPU). A shuffle, and a tensor-core mma, is a
// block-wide barrier around an exchange through per-block slots, so every thread of the block must reach each
// one, as ulc's reductions and GEMMs do (ulc_cuda.cuh). `__shared__` variables are per OS thread, which is per running block.
// Fibers are created once per OS thread and reused by later blocks. On x86-64 they switch by saving the
// callee-saved registers and the stack pointer (a dozen instructions); elsewhere with swapcontext, which is
// correct but makes a system call per switch.
//
// Host side: the slice of the runtime API that ulc_host.cu uses. Memory is host memory, every call is
// synchronous, and a stream under capture records its launches: a CUDA Graph is the recorded list, replayed.
#pragma once
#define ULC_EMULATE 1

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline unsigned __umulhi(unsigned a, unsigned b) {
  return (unsigned)(((uint64_t)a * b) >> 32);
}

inline float rsqrtf(float x) {
  return 1.0f / sqrtf(x);
}

namespace ulc_emu {

constexpr size_t kFiberStack = 64 * 1024;
constexpr unsigned kMaxBlock = 1024;
/** Bytes each thread posts in a warp-collective exchange: a shuffled value, or an mma's six fragment registers. */
constexpr unsigned kSlot = 24;

[[noreturn]] inline void die(const char* why) {
  std::fprintf(stderr, "ulc CUDA emulation: %s\n", why);
  std::abort();
}

#if defined(__x86_64__) && !defined(ULC_EMU_UCONTEXT)
// Saves rbp, rbx, r12-r15 on the running stack and its stack pointer in *from, then resumes the context
// whose stack pointer is `to`. A local symbol: every translation unit has its own copy.
extern "C" void ulc_emu_switch(void** from, void* to);
asm(R"(
  .text
  .p2align 4
ulc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
)");

struct Context {
  void* sp = nullptr;
};

/** A context that starts `entry` (which never returns) on `stack` when first switched to. */
inline void context_start(Context& c, char* stack, size_t size, void (*entry)()) {
  void** sp = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15));
  *--sp = nullptr;                         // where entry's return address would be: keeps the ABI's alignment
  *--sp = reinterpret_cast<void*>(entry);  // ulc_emu_switch's `ret` jumps here
  for (int i = 0; i < 6; ++i) *--sp = nullptr;
  c.sp = sp;
}

inline void context_switch(Context& from, Context& to) {
  ulc_emu_switch(&from.sp, to.sp);
}
#else
struct Context {
  ucontext_t uc;
};

inline void context_start(Context& c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}

inline void context_switch(Context& from, Context& to) {
  swapcontext(&from.uc, &to.uc);
}
#endif

/** A fiber's stack, with a page below it that faults: an overflow stops the program instead of corrupting. */
class Stack {
 public:
  Stack() {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    base_ = static_cast<char*>(mmap(nullptr, kFiberStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED || mprotect(base_, page, PROT_NONE) != 0) die("cannot map a fiber stack");
    size_ = kFiberStack + page;
    top_ = base_ + page;
  }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  ~Stack() { munmap(base_, size_); }
  char* data() const { return top_; }
  size_t size() const { return kFiberStack; }

 private:
  char* base_;
  char* top_;
  size_t size_;
};

struct Fiber {
  Context context;
  std::unique_ptr<Stack> stack;
  unsigned thread = 0;  // its threadIdx.x
  bool started = false;
  bool done = false;
  unsigned shuffles = 0;  // which of the two exchange buffers the thread's next shuffle uses
};

/** One thread of the launch: the kernel call with its arguments. */
struct Body {
  void (*call)(const void*);
  const void* self;
  void operator()() const { call(self); }
};

/** A pool thread's state: its fibers and the block it runs. */
struct Worker {
  std::vector<std::unique_ptr<Fiber>> fibers;  // never move: a context may point into itself
  Context scheduler;
  Fiber* current = nullptr;  // the running fiber; null in a plain (non-cooperative) block
  std::vector<Fiber*> round;  // the live fibers, in thread order, of the round being run
  size_t position = 0;        // the running fiber's place in `round`
  Body body{};
  unsigned threads = 0;
  alignas(16) unsigned char exchange[2][kMaxBlock * kSlot];
};

inline thread_local Worker* worker = nullptr;

inline void fiber_main();

/** Leaves `from` (saving it) for fiber `f`, starting it on its first entry. */
inline void enter(Worker& w, Fiber& f, Context& from) {
  w.current = &f;
  threadIdx.x = f.thread;
  if (!f.started) {
    f.started = true;
    f.stack = std::make_unique<Stack>();
    context_start(f.context, f.stack->data(), f.stack->size(), fiber_main);
  }
  context_switch(from, f.context);
}

/**
 * The running fiber has reached a barrier or its end: control goes straight to the next fiber of the round,
 * or back to the scheduler after the last. Returns when a later round resumes this fiber.
 */
inline void pass() {
  Worker& w = *worker;
  Context& from = w.current->context;
  if (++w.position < w.round.size()) enter(w, *w.round[w.position], from);
  else context_switch(from, w.scheduler);
}

inline void fiber_main() {
  // A fiber runs one CUDA thread per block, forever: after each it passes on as done, and the next block
  // resumes it here. Fibers never leave their OS thread, so `worker` stays valid.
  for (;;) {
    Worker& w = *worker;
    w.body();
    w.current->done = true;
    pass();
  }
}

inline void run_cooperative_block(Worker& w) {
  while (w.fibers.size() < w.threads) {
    w.fibers.push_back(std::make_unique<Fiber>());
    w.fibers.back()->thread = (unsigned)w.fibers.size() - 1;
  }
  for (unsigned t = 0; t < w.threads; ++t) {
    w.fibers[t]->done = false;
    w.fibers[t]->shuffles = 0;
  }
  for (;;) {
    // One round: every live thread runs to its next barrier or returns.
    w.round.clear();
    for (unsigned t = 0; t < w.threads; ++t)
      if (!w.fibers[t]->done) w.round.push_back(w.fibers[t].get());
    if (w.round.empty()) break;
    w.position = 0;
    enter(w, *w.round[0], w.scheduler);
  }
  w.current = nullptr;
}

inline void run_block(Worker& w, unsigned block, bool cooperative) {
  blockIdx.x = block;
  if (cooperative) return run_cooperative_block(w);
  for (unsigned t = 0; t < w.threads; ++t) {
    threadIdx.x = t;
    w.body();
  }
}

/** OS threads that run the blocks of one launch at a time; the launching thread works too. */
class Pool {
 public:
  static Pool& get() {
    static Pool pool;
    return pool;
  }

  void run(unsigned grid, unsigned block, bool cooperative, Body body) {
    grid_ = grid;
    block_ = block;
    cooperative_ = cooperative;
    body_ = body;
    next_.store(0);
    const unsigned helpers = std::min<unsigned>(grid - 1, (unsigned)threads_.size());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      wanted_ = helpers;
      busy_ = helpers;
      ++generation_;
    }
    start_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mutex_);
    finished_.wait(lock, [&] { return busy_ == 0; });
  }

 private:
  Pool() {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 1; i < cores; ++i) threads_.emplace_back([this] { serve(); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void serve() {
    unsigned seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        start_.wait(lock, [&] { return stop_ || (generation_ != seen && wanted_ > 0); });
        if (stop_) return;
        seen = generation_;
        --wanted_;
      }
      work();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) finished_.notify_all();
    }
  }

  void work() {
    thread_local Worker* mine = new Worker();  // lives as long as its thread; fibers point into it
    Worker& w = *mine;
    worker = &w;
    w.body = body_;
    w.threads = block_;
    blockDim.x = block_;
    gridDim.x = grid_;
    for (unsigned b; (b = next_.fetch_add(1)) < grid_;) run_block(w, b, cooperative_);
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable start_, finished_;
  unsigned generation_ = 0, wanted_ = 0, busy_ = 0;
  bool stop_ = false;
  unsigned grid_ = 0, block_ = 0;
  bool cooperative_ = false;
  Body body_{};
  std::atomic<unsigned> next_{0};
};

}  // namespace ulc_emu

inline void __syncthreads() {
  ulc_emu::Worker* w = ulc_emu::worker;
  if (w == nullptr || w->current == nullptr) ulc_emu::die("__syncthreads in a kernel launched without ulc_launch's cooperative flag");
  ulc_emu::pass();
}

/** A warp's barrier: the block's (a block's live threads run round by round, so every warp's are at it too). */
inline void __syncwarp(unsigned = 0xffffffffu) {
  __syncthreads();
}

/** Blocks run on several OS threads at once, so device-wide atomics and fences are the CPU's. */
inline void __threadfence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

inline unsigned atomicAdd(unsigned* address, unsigned v) {
  return __atomic_fetch_add(address, v, __ATOMIC_SEQ_CST);
}

namespace ulc_emu {
/**
 * Every thread of the block posts `v`, and after the block's barrier reads everyone's (indexed by threadIdx.x):
 * what warp-collective operations are built on. Two exchange buffers in turn: a thread writes one only after the
 * barrier of the next exchange, by which time every thread has read it.
 */
template <class T> const T* exchange(const T& v) {
  static_assert(sizeof(T) <= kSlot, "an exchanged value fits a slot");
  Worker& w = *worker;
  T* slots = reinterpret_cast<T*>(w.exchange[w.current->shuffles++ & 1]);
  slots[threadIdx.x] = v;
  __syncthreads();
  return slots;
}
}  // namespace ulc_emu

template <class T> T __shfl_down_sync(unsigned, T v, unsigned delta) {
  const T* slots = ulc_emu::exchange(v);
  const unsigned t = threadIdx.x;
  return (t & 31u) + delta < 32u && t + delta < ulc_emu::worker->threads ? slots[t + delta] : v;
}

namespace ulc_emu {
/**
 * An mma.sync's sums for one lane: its four accumulators d[q] (row g, +8 for q ≥ 2; column 2t, +1 for odd q, of the
 * 16 × 8 tile), each A(i, k)·B(k, j) over k = 0 .. K − 1 added onto d[q] in that order, in fp32.
 */
template <unsigned K, class FA, class FB> void mma_accumulate(float (&d)[4], FA A, FB B) {
  const unsigned lane = threadIdx.x & 31u, g = lane >> 2, t = lane & 3u;
  for (unsigned q = 0; q < 4; ++q) {
    const unsigned i = g + 8 * (q >> 1), j = 2 * t + (q & 1u);
    float sum = d[q];
    for (unsigned k = 0; k < K; ++k) sum += A(i, k) * B(k, j);
    d[q] = sum;
  }
}
}  // namespace ulc_emu

/**
 * mma.sync m16n8k8 TF32 (ulc_cuda.cuh), lane by lane: the warp's fragments are exchanged, and each lane computes
 * its four accumulators from the whole 16 × 8 and 8 × 8 tiles, summing the eight products in order onto d. The
 * products of TF32 values are exact in fp32, so this differs from the hardware only in the order (and internal
 * precision) of the sum.
 */
inline void ulc_mma_tf32(float (&d)[4], const float (&a)[4], const float (&b)[2]) {
  struct Fragments {
    float a[4], b[2];
  };
  const Fragments* all = ulc_emu::exchange(Fragments{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}});
  const unsigned warp = threadIdx.x & ~31u;
  // A[i][k] is held by lane (i % 8)·4 + k % 4 as a[(i ≥ 8) + 2·(k ≥ 4)]; B[k][j] by lane j·4 + k % 4 as b[k ≥ 4].
  auto A = [&](unsigned i, unsigned k) { return all[warp + (i & 7u) * 4 + (k & 3u)].a[(i >> 3) + 2 * (k >> 2)]; };
  auto B = [&](unsigned k, unsigned j) { return all[warp + j * 4 + (k & 3u)].b[k >> 2]; };
  ulc_emu::mma_accumulate<8>(d, A, B);
}

/**
 * mma.sync m16n8k16 BF16 (ulc_cuda.cuh), lane by lane as ulc_mma_tf32, with the PTX ISA's m16n8k16 .bf16 layout:
 * two bfloat16 to a register, the lower-numbered in the low 16 bits, and a bfloat16 is the high half of a float.
 * Each lane sums its accumulators' sixteen products in order onto d, as ulc_mma_tf32 sums its eight: products of
 * bfloat16 values (8 significant bits each) are exact in fp32, so this too differs from the hardware only in the
 * order (and internal precision) of the sum.
 */
inline void ulc_mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  struct Fragments {
    unsigned a[4], b[2];
  };
  const Fragments* all = ulc_emu::exchange(Fragments{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}});
  const unsigned warp = threadIdx.x & ~31u;
  const auto half = [](unsigned r, unsigned h) { return __uint_as_float(h ? r & 0xffff0000u : r << 16); };
  // A[i][k] is held by lane (i % 8)·4 + (k % 8) / 2 as half k % 2 of a[(i ≥ 8) + 2·(k ≥ 8)]; B[k][j] by lane
  // j·4 + (k % 8) / 2 as half k % 2 of b[k ≥ 8].
  auto A = [&](unsigned i, unsigned k) { return half(all[warp + (i & 7u) * 4 + ((k & 7u) >> 1)].a[(i >> 3) + 2 * (k >> 3)], k & 1u); };
  auto B = [&](unsigned k, unsigned j) { return half(all[warp + j * 4 + ((k & 7u) >> 1)].b[k >> 3], k & 1u); };
  ulc_emu::mma_accumulate<16>(d, A, B);
}

// ------------------------------------------------------------------------------------------ host API

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorNoDevice = 100,
  cudaErrorECCUncorrectable = 214,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchTimeout = 702,
  cudaErrorAssert = 710,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorInvalidPc = 718,
  cudaErrorLaunchFailure = 719,
};

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    default:
      return "unspecified launch failure";
  }
}

/**
 * A GPU's sticky error, which a test provokes with ULC_EMULATE_FAULT=N: the N-th graph launch "faults", and from
 * then on every call fails with cudaErrorIllegalAddress, as a real context does after an illegal access.
 */
inline cudaError_t ulc_emu_fault = cudaSuccess;

inline void ulc_emu_count_launch() {
  static long remaining = [] {
    const char* n = std::getenv("ULC_EMULATE_FAULT");
    return n == nullptr ? -1L : std::atol(n);
  }();
  if (remaining > 0 && --remaining == 0) ulc_emu_fault = cudaErrorIllegalAddress;
}

inline cudaError_t cudaGetLastError() {
  return ulc_emu_fault;
}

enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeRelaxed };

struct CUstream_st {
  std::vector<std::function<void()>>* capture = nullptr;
};
struct CUgraph_st {
  std::vector<std::function<void()>> launches;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> launches;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point at;
};
using cudaStream_t = CUstream_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;
using cudaEvent_t = CUevent_st*;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor, multiProcessorCount;
};

struct cudaFuncAttributes {
  int binaryVersion, ptxVersion;
};

inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, const void*) {
  a->binaryVersion = a->ptxVersion = 90;
  return cudaSuccess;
}

inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}

inline cudaError_t cudaSetDevice(int) {
  return cudaSuccess;
}

/** The emulated device's memory is the host's. */
inline size_t ulc_emu_memory(int name) {
  return (size_t)sysconf(name) * (size_t)sysconf(_SC_PAGESIZE);
}

inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::snprintf(p->name, sizeof p->name, "CUDA emulation on %u CPU threads", std::max(1u, std::thread::hardware_concurrency()));
  p->totalGlobalMem = ulc_emu_memory(_SC_PHYS_PAGES);
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = (int)std::max(1u, std::thread::hardware_concurrency());
  return cudaSuccess;
}

inline cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  *free = ulc_emu_memory(_SC_AVPHYS_PAGES);
  *total = ulc_emu_memory(_SC_PHYS_PAGES);
  return cudaSuccess;
}

inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::calloc(bytes == 0 ? 1 : bytes, 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}

inline cudaError_t cudaMallocHost(void** p, size_t bytes) {
  return cudaMalloc(p, bytes);
}

inline cudaError_t cudaFreeHost(void* p) {
  return cudaFree(p);
}

inline cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st();
  return cudaSuccess;
}

inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}

inline cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return ulc_emu_fault;
}

/** Runs `f` now, or records it when the stream is being captured. */
inline void ulc_emu_enqueue(cudaStream_t s, std::function<void()> f) {
  if (s != nullptr && s->capture != nullptr) s->capture->push_back(std::move(f));
  else f();
}

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t s) {
  if (ulc_emu_fault != cudaSuccess) return ulc_emu_fault;
  ulc_emu_enqueue(s, [=] { std::memmove(dst, src, bytes); });
  return cudaSuccess;
}

inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  s->capture = new std::vector<std::function<void()>>();
  return cudaSuccess;
}

inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* g) {
  *g = new CUgraph_st{std::move(*s->capture)};
  delete s->capture;
  s->capture = nullptr;
  return cudaSuccess;
}

inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t g, unsigned long long = 0) {
  *e = new CUgraphExec_st{g->launches};
  return cudaSuccess;
}

inline cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  if (ulc_emu_fault != cudaSuccess) return ulc_emu_fault;
  for (auto& f : e->launches) ulc_emu_enqueue(s, f);
  ulc_emu_count_launch();  // a fault shows at the next synchronisation, as a real one does
  return cudaSuccess;
}

inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}

inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}

inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st();
  return cudaSuccess;
}

inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}

inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  ulc_emu_enqueue(s, [e] { e->at = std::chrono::steady_clock::now(); });
  return cudaSuccess;
}

inline cudaError_t cudaEventSynchronize(cudaEvent_t) {
  return cudaSuccess;
}

inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}

/** A kernel launch: `kernel<<<grid, block, 0, stream>>>(args...)` on the emulated device. */
template <class... P, class... A> void ulc_launch(void (*kernel)(P...), unsigned grid, unsigned block, bool cooperative, cudaStream_t stream, A... args) {
  if (block > ulc_emu::kMaxBlock) ulc_emu::die("a block has more than 1024 threads");
  ulc_emu_enqueue(stream, [=] {
    auto thread = [&] { kernel(args...); };
    const ulc_emu::Body body{[](const void* f) { (*static_cast<const decltype(thread)*>(f))(); }, &thread};
    if (grid > 0) ulc_emu::Pool::get().run(grid, block, cooperative, body);
  });
}
