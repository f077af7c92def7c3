// ulc's CUDA host runtime. It loads a program's schedule (schedule.txt: per graph its buffers and kernel
// launches), allocates one device arena for every buffer, and runs graphs: the first run of a graph with a
// given placement of its pinned buffers is captured into a CUDA Graph, later runs replay it.
//
// The arena is [fixed | rng | scratch]. The fixed part belongs to the driver (runtime/cuda/session.ts), which
// places parameters, optimizer state, inputs and outputs there and passes their offsets with each run. The
// rng words hold the run's {seed, step}, which kernels read from memory, so a replay draws new numbers.
// Scratch holds the intermediates at the offsets the compiler planned (compiler/memory.ts); graphs run one
// at a time and share it.
//
//   ulc_program info          the device, or why there is none (exit 1)
//   ulc_program serve DIR     the protocol below on stdin/stdout, with DIR/schedule.txt
//
// Protocol: little-endian binary. A request is a u32 op and its fields; the reply is a u32 status (0: ok,
// then the op's result; 1: a u32 length and an error message).
//   INFO                                  -> string device, u32 emulated, u64 total bytes
//   ALLOC u64 fixed                       -> (allocates the arena)
//   WRITE u64 offset, u64 n, n bytes      -> (host to device)
//   READ  u64 offset, u64 n               -> n bytes
//   COPY  u64 dst, u64 src, u64 n         -> (device to device)
//   RUN   u32 graph, u32 seed, u32 step, u32 k, k x u64 pinned offsets,
//         u32 w, w x (u64 offset, u64 n, n bytes), u32 r, r x (u64 offset, u64 n)  -> the r reads' bytes
//   TIME  (RUN's fields up to the pinned offsets), u32 repeats -> f64 milliseconds per replay
//   QUIT
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ulc_cuda.cuh"

#ifndef ULC_ARCH
#define ULC_ARCH "unknown"
#endif

extern const ulc_kernel_entry ulc_kernels[];
extern const int ulc_kernel_count;

namespace {

constexpr uint64_t kAlign = 256;
constexpr int64_t kPinned = -1;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw Failure(what + ": " + cudaGetErrorString(e));
}

std::string mib(uint64_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f MiB", bytes / 1048576.0);
  return s;
}

struct Launch {
  const ulc_kernel_entry* kernel;
  std::vector<int> buffers;  // indices into the graph's buffers
};

struct Graph {
  std::string name;
  std::vector<int64_t> offsets;  // a scratch offset, or kPinned: given with each run
  std::vector<Launch> launches;
};

struct Schedule {
  uint64_t scratch = 0;
  std::vector<Graph> graphs;
};

Schedule load_schedule(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Failure("cannot read " + path);
  std::map<std::string, const ulc_kernel_entry*> kernels;
  for (int i = 0; i < ulc_kernel_count; ++i) kernels[ulc_kernels[i].name] = &ulc_kernels[i];
  std::string word, format;
  int version = 0;
  size_t count = 0;
  Schedule s;
  in >> format >> version >> word >> s.scratch >> word >> count;
  if (format != "ulc-cuda-schedule" || version != 1) throw Failure(path + " is not a ulc-cuda-schedule 1 file");
  for (size_t g = 0; g < count && in; ++g) {
    Graph graph;
    size_t buffers = 0, launches = 0;
    in >> word >> graph.name >> buffers >> launches;
    graph.offsets.resize(buffers);
    for (auto& o : graph.offsets) in >> o;
    for (size_t l = 0; l < launches && in; ++l) {
      std::string kernel;
      size_t n = 0;
      in >> word >> kernel >> n;
      auto k = kernels.find(kernel);
      if (k == kernels.end()) throw Failure(path + ": graph " + graph.name + " launches " + kernel + ", which this program lacks");
      Launch launch{k->second, std::vector<int>(n)};
      for (auto& b : launch.buffers) {
        in >> b;
        if (b < 0 || (size_t)b >= buffers) throw Failure(path + ": graph " + graph.name + " binds a buffer out of range");
      }
      graph.launches.push_back(std::move(launch));
    }
    s.graphs.push_back(std::move(graph));
  }
  if (!in) throw Failure(path + " is truncated or malformed");
  return s;
}

/** The device, or a Failure saying plainly why it cannot run this program. */
std::string open_device(uint64_t* total) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    throw Failure(std::string("no CUDA GPU is usable here (") + (e != cudaSuccess ? cudaGetErrorString(e) : "no device") + ")");
  check(cudaSetDevice(0), "selecting GPU 0");
  cudaDeviceProp p;
  check(cudaGetDeviceProperties(&p, 0), "reading the GPU's properties");
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

class Runtime {
 public:
  explicit Runtime(Schedule s) : schedule_(std::move(s)) { check(cudaStreamCreate(&stream_), "creating a stream"); }

  void alloc(uint64_t fixed) {
    if (arena_ != nullptr) throw Failure("the arena is already allocated");
    fixed_ = align(fixed);
    size_ = fixed_ + kAlign + schedule_.scratch;
    if (cudaMalloc(reinterpret_cast<void**>(&arena_), size_) != cudaSuccess) {
      cudaGetLastError();
      size_t free = 0, total = 0;
      cudaMemGetInfo(&free, &total);
      arena_ = nullptr;
      throw Failure("out of device memory: the arena needs " + mib(size_) + " (" + mib(fixed_) + " of parameters, state and inputs, " +
                    mib(schedule_.scratch) + " of intermediates); the GPU has " + mib(free) + " free of " + mib(total) +
                    ": try a smaller batch (--bind B=...)");
    }
    rng_ = reinterpret_cast<unsigned*>(arena_ + fixed_);
  }

  void write(uint64_t offset, const void* data, uint64_t n) { check(cudaMemcpyAsync(at(offset, n), data, n, cudaMemcpyHostToDevice, stream_), "copying to the device"); }
  void read(uint64_t offset, void* data, uint64_t n) { check(cudaMemcpyAsync(data, at(offset, n), n, cudaMemcpyDeviceToHost, stream_), "copying from the device"); }
  void copy(uint64_t dst, uint64_t src, uint64_t n) { check(cudaMemcpyAsync(at(dst, n), at(src, n), n, cudaMemcpyDeviceToDevice, stream_), "copying on the device"); }
  void sync() { check(cudaStreamSynchronize(stream_), "running on the device"); }

  /** Stages the {seed, step} words and enqueues the graph (captured on its first run with these offsets). */
  void launch(uint32_t graph, uint32_t seed, uint32_t step, const std::vector<uint64_t>& pinned) {
    const unsigned words[2] = {seed, step};
    std::memcpy(staging(sizeof words), words, sizeof words);
    check(cudaMemcpyAsync(rng_, staging_, sizeof words, cudaMemcpyHostToDevice, stream_), "copying the seed");
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
    launch(graph, seed, step, pinned);  // captures, and warms up
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
  static uint64_t align(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

  unsigned char* at(uint64_t offset, uint64_t n) {
    if (arena_ == nullptr) throw Failure("no arena: ALLOC first");
    if (offset > size_ || n > size_ - offset) throw Failure("an access past the arena's end");
    return arena_ + offset;
  }

  cudaGraphExec_t executable(uint32_t index, const std::vector<uint64_t>& pinned) {
    if (index >= schedule_.graphs.size()) throw Failure("no graph " + std::to_string(index));
    auto key = std::make_pair(index, pinned);
    auto hit = cache_.find(key);
    if (hit != cache_.end()) return hit->second;
    const Graph& g = schedule_.graphs[index];
    std::vector<void*> address(g.offsets.size());
    size_t next = 0;
    for (size_t b = 0; b < g.offsets.size(); ++b) {
      if (g.offsets[b] != kPinned) {
        address[b] = arena_ + fixed_ + kAlign + g.offsets[b];
        continue;
      }
      if (next == pinned.size()) throw Failure("graph " + g.name + " needs more pinned offsets than the run gave");
      address[b] = at(pinned[next++], 0);
    }
    if (next != pinned.size()) throw Failure("graph " + g.name + " got more pinned offsets than it has pinned buffers");
    cudaGraphExec_t exec = nullptr;
    if (!g.launches.empty()) {
      check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "capturing graph " + g.name);
      std::vector<void*> bound;
      for (const Launch& l : g.launches) {
        bound.clear();
        for (int b : l.buffers) bound.push_back(address[b]);
        l.kernel->launch(bound.data(), rng_, stream_);
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

  Schedule schedule_;
  cudaStream_t stream_ = nullptr;
  unsigned char* arena_ = nullptr;
  uint64_t fixed_ = 0, size_ = 0;
  unsigned* rng_ = nullptr;
  unsigned char* staging_ = nullptr;
  uint64_t staging_size_ = 0;
  std::map<std::pair<uint32_t, std::vector<uint64_t>>, cudaGraphExec_t> cache_;
};

// ------------------------------------------------------------------------------------------ protocol

enum Op : uint32_t { INFO = 1, ALLOC, WRITE, READ, COPY, RUN, TIME, QUIT };

template <class T> T get() {
  T v;
  if (std::fread(&v, sizeof v, 1, stdin) != 1) throw Failure("the driver closed the pipe");
  return v;
}

void get_bytes(void* p, uint64_t n) {
  if (n > 0 && std::fread(p, 1, n, stdin) != n) throw Failure("the driver closed the pipe");
}

template <class T> void put(T v) { std::fwrite(&v, sizeof v, 1, stdout); }

void put_string(const std::string& s) {
  put<uint32_t>((uint32_t)s.size());
  std::fwrite(s.data(), 1, s.size(), stdout);
}

std::vector<uint64_t> get_offsets() {
  std::vector<uint64_t> v(get<uint32_t>());
  for (auto& o : v) o = get<uint64_t>();
  return v;
}

int serve(const std::string& dir) {
  uint64_t total = 0;
  std::string device;
  Schedule schedule;
  try {
    device = open_device(&total);
    schedule = load_schedule(dir + "/schedule.txt");
  } catch (const Failure& f) {
    std::fprintf(stderr, "%s\n", f.what());
    return 1;
  }
  Runtime rt(std::move(schedule));
  std::setvbuf(stdout, nullptr, _IOFBF, 1 << 20);
  for (;;) {
    const uint32_t op = get<uint32_t>();
    if (op == QUIT) return 0;
    try {
      switch (op) {
        case INFO:
          put<uint32_t>(0);
          put_string(device);
#ifdef ULC_EMULATE
          put<uint32_t>(1);
#else
          put<uint32_t>(0);
#endif
          put<uint64_t>(total);
          break;
        case ALLOC:
          rt.alloc(get<uint64_t>());
          put<uint32_t>(0);
          break;
        case WRITE: {
          const uint64_t offset = get<uint64_t>(), n = get<uint64_t>();
          get_bytes(rt.staging(n), n);
          rt.write(offset, rt.staging(n), n);
          rt.sync();
          put<uint32_t>(0);
          break;
        }
        case READ: {
          const uint64_t offset = get<uint64_t>(), n = get<uint64_t>();
          rt.read(offset, rt.staging(n), n);
          rt.sync();
          put<uint32_t>(0);
          std::fwrite(rt.staging(n), 1, n, stdout);
          break;
        }
        case COPY: {
          const uint64_t dst = get<uint64_t>(), src = get<uint64_t>(), n = get<uint64_t>();
          rt.copy(dst, src, n);
          rt.sync();
          put<uint32_t>(0);
          break;
        }
        case RUN: {
          const uint32_t graph = get<uint32_t>(), seed = get<uint32_t>(), step = get<uint32_t>();
          const std::vector<uint64_t> pinned = get_offsets();
          // The request is read whole first: sizing the staging buffer may reallocate it.
          std::vector<std::pair<uint64_t, uint64_t>> writes(get<uint32_t>());
          std::vector<unsigned char> data;
          for (auto& [offset, n] : writes) {
            offset = get<uint64_t>();
            n = get<uint64_t>();
            data.resize(data.size() + n);
            get_bytes(data.data() + data.size() - n, n);
          }
          std::vector<std::pair<uint64_t, uint64_t>> reads(get<uint32_t>());
          uint64_t out = 0;
          for (auto& [offset, n] : reads) {
            offset = get<uint64_t>();
            n = get<uint64_t>();
            out += n;
          }
          // Staging: [rng words | inputs | outputs]; launch() stages the rng words at its start.
          unsigned char* stage = rt.staging(8 + data.size() + out);
          std::memcpy(stage + 8, data.data(), data.size());
          uint64_t at = 8;
          for (auto& [offset, n] : writes) {
            rt.write(offset, stage + at, n);
            at += n;
          }
          rt.launch(graph, seed, step, pinned);
          for (auto& [offset, n] : reads) {
            rt.read(offset, stage + at, n);
            at += n;
          }
          rt.sync();
          put<uint32_t>(0);
          std::fwrite(stage + 8 + data.size(), 1, out, stdout);
          break;
        }
        case TIME: {
          const uint32_t graph = get<uint32_t>(), seed = get<uint32_t>(), step = get<uint32_t>();
          const std::vector<uint64_t> pinned = get_offsets();
          const double ms = rt.time(graph, seed, step, pinned, get<uint32_t>());
          put<uint32_t>(0);
          put<double>(ms);
          break;
        }
        default:
          throw Failure("unknown request " + std::to_string(op));
      }
    } catch (const Failure& f) {
      put<uint32_t>(1);
      put_string(f.what());
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "info" && argc == 2) {
    try {
      uint64_t total = 0;
      std::printf("%s\n", open_device(&total).c_str());
      return 0;
    } catch (const Failure& f) {
      std::fprintf(stderr, "%s\n", f.what());
      return 1;
    }
  }
  if (command == "serve" && argc == 3) {
    try {
      return serve(argv[2]);
    } catch (const Failure& f) {
      std::fprintf(stderr, "%s\n", f.what());  // the pipe closed
      return 1;
    }
  }
  std::fprintf(stderr, "usage: %s info | serve DIR\n", argv[0]);
  return 2;
}
