// What ulc's host runtimes share (the CUDA one, backends/cuda/cpp/ulc_host.cu, and the CPU one,
// backends/cpu/cpp/ulc_host.cpp): the schedule a program loads, the arena's layout, and the protocol the driver
// (runtime/native/host.ts) speaks on stdin/stdout. A runtime supplies only its device: memory, copies, and how a
// graph's launches run.
//
// The arena is [fixed | rng | scratch]. The fixed part belongs to the driver (runtime/native/session.ts), which
// places parameters, optimizer state, inputs and outputs there and passes their offsets with each run. The
// rng words hold the run's {seed, step}, which kernels read from memory, so a replayed graph draws new numbers.
// Scratch holds the intermediates at the offsets the compiler planned (compiler/memory.ts); graphs run one
// at a time and share it.
//
//   ulc_program info          the device, or why there is none (exit 1)
//   ulc_program serve DIR     the protocol below on stdin/stdout, with DIR/schedule.txt
//
// Protocol: little-endian binary. A request is a u32 op and its fields; the reply is a u32 status (0: ok,
// then the op's result; 1: a u32 length and an error message). After an error the device cannot recover from (a
// GPU's sticky error: DeviceLost), the program replies with it and exits.
//   INFO                                  -> string device, u32 emulated, u64 total bytes
//   ALLOC u64 fixed                       -> (allocates the arena)
//   WRITE u64 offset, u64 n, n bytes      -> (host to device)
//   READ  u64 offset, u64 n               -> n bytes
//   COPY  u64 dst, u64 src, u64 n         -> (device to device)
//   RUN   u32 runs, runs x (u32 graph, u32 seed, u32 step, u32 k, k x u64 pinned offsets,
//         u32 w, w x (u64 offset, u64 n, n bytes), u32 r, r x (u64 offset, u64 n))  -> every run's reads' bytes
//         (the runs are enqueued in order and synchronised once: one request may carry several train steps)
//   TIME  (RUN's fields up to the pinned offsets), u32 repeats -> f64 milliseconds per run
//   QUIT
//   RANKS                                 -> u32 rank, u32 ranks, string collective
//   ALLREDUCE u64 offset, u64 n           -> (n f32 values become their mean over the ranks)
//
// Built with -DULC_MPI (a data-parallel program), the process is a rank of an MPI job (mpirun starts the driver,
// which starts this program; MPI_Init finds the job through the environment they share), and ALLREDUCE is
// MPI_Allreduce through host memory. Otherwise it is a job of one, and ALLREDUCE leaves the values as they are.
//
// The includer first defines `ulc_kernel_entry` (a kernel of the program: its `name` and how to launch it); the
// program's table of them is ulc_kernels. A Device type provides:
//   static std::string open(uint64_t* total, int local)   the device in words (and its memory), or a Failure saying
//                                              why not; `local` is the rank on this machine (which GPU to use)
//   static constexpr bool emulated
//   explicit Device(Schedule)
//   void alloc(uint64_t fixed); unsigned char* staging(uint64_t n)   (host memory for n bytes, valid until the
//   next call); write, read, copy (enqueued); sync(); launch(graph, words, pinned) ({seed, step} in host memory
//   that stays valid until the next sync); time(graph, seed, step, pinned, repeats)
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef __linux__
#include <csignal>
#include <sys/prctl.h>
#endif

#ifdef ULC_MPI
// MPI's C interface only: the deprecated C++ bindings would need their own library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

/** The program's kernels (program.cu or program.cpp, generated). */
extern const ulc_kernel_entry ulc_kernels[];
extern const int ulc_kernel_count;

namespace ulc {

constexpr uint64_t kAlign = 256;
constexpr int64_t kPinned = -1;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/** The device can run nothing more (a GPU's sticky error): the request fails with this and the program ends. */
struct DeviceLost : Failure {
  using Failure::Failure;
};

inline std::string mib(uint64_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f MiB", bytes / 1048576.0);
  return s;
}

inline uint64_t align(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

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

/** schedule.txt (backends/native/schedule.ts), its kernels looked up in the program's table. */
inline Schedule load_schedule(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Failure("cannot read " + path);
  std::map<std::string, const ulc_kernel_entry*> kernels;
  for (int i = 0; i < ulc_kernel_count; ++i) kernels[ulc_kernels[i].name] = &ulc_kernels[i];
  std::string word, format;
  int version = 0;
  size_t graphs = 0;
  Schedule s;
  in >> format >> version >> word >> s.scratch >> word >> graphs;
  if (format != "ulc-schedule" || version != 1) throw Failure(path + " is not a ulc-schedule 1 file");
  for (size_t g = 0; g < graphs && in; ++g) {
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

/** The arena's layout over device memory at `base`: bounds-checked offsets and a graph's buffer addresses. */
class Arena {
 public:
  /** Lays out [fixed | rng | scratch] for `fixed` bytes of the driver's and `scratch` of intermediates. */
  uint64_t lay_out(uint64_t fixed, uint64_t scratch) {
    if (base_ != nullptr) throw Failure("the arena is already allocated");
    fixed_ = align(fixed);
    size_ = fixed_ + kAlign + scratch;
    return size_;
  }
  void place(unsigned char* base) { base_ = base; }
  unsigned char* base() const { return base_; }
  unsigned* rng() const { return reinterpret_cast<unsigned*>(base_ + fixed_); }

  unsigned char* at(uint64_t offset, uint64_t n) const {
    if (base_ == nullptr) throw Failure("no arena: ALLOC first");
    if (offset > size_ || n > size_ - offset) throw Failure("an access past the arena's end");
    return base_ + offset;
  }

  /** Every buffer's address in a run of `g`: scratch at its planned offset, pinned ones where the driver says. */
  std::vector<void*> addresses(const Graph& g, const std::vector<uint64_t>& pinned) const {
    std::vector<void*> address(g.offsets.size());
    size_t next = 0;
    for (size_t b = 0; b < g.offsets.size(); ++b) {
      if (g.offsets[b] != kPinned) {
        address[b] = base_ + fixed_ + kAlign + g.offsets[b];
        continue;
      }
      if (next == pinned.size()) throw Failure("graph " + g.name + " needs more pinned offsets than the run gave");
      address[b] = at(pinned[next++], 0);
    }
    if (next != pinned.size()) throw Failure("graph " + g.name + " got more pinned offsets than it has pinned buffers");
    return address;
  }

 private:
  unsigned char* base_ = nullptr;
  uint64_t fixed_ = 0, size_ = 0;
};

// ------------------------------------------------------------------------------------------ the job

/** The job this process is a rank of: MPI's world when built with ULC_MPI, else a job of one. */
class Job {
 public:
  Job(int* argc, char*** argv) {
#ifdef ULC_MPI
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks_);
    // The ranks on this machine share its GPUs: the local rank picks one.
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_);
    MPI_Comm_free(&node);
#else
    (void)argc;
    (void)argv;
#endif
  }
  ~Job() {
#ifdef ULC_MPI
    MPI_Finalize();
#endif
  }
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  int rank() const { return rank_; }
  int ranks() const { return ranks_; }
  /** This rank's index among the ranks on its machine. */
  int local() const { return local_; }

  static const char* collective() {
#ifdef ULC_MPI
    return "MPI_Allreduce through host memory";
#else
    return "none (a program built without MPI runs alone)";
#endif
  }

  /** Replaces n floats with their mean over the ranks: one in-place sum, then a scale. */
  void mean(float* values, uint64_t n) const {
#ifdef ULC_MPI
    constexpr uint64_t kChunk = 1u << 30;  // MPI counts are ints
    for (uint64_t at = 0; at < n; at += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, values + at, (int)std::min(kChunk, n - at), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    const float scale = 1.0f / (float)ranks_;
    for (uint64_t i = 0; i < n; ++i) values[i] *= scale;
#else
    (void)values;
    (void)n;
#endif
  }

 private:
  int rank_ = 0, ranks_ = 1, local_ = 0;
};

// ------------------------------------------------------------------------------------------ protocol

enum Op : uint32_t { INFO = 1, ALLOC, WRITE, READ, COPY, RUN, TIME, QUIT, RANKS, ALLREDUCE };

template <class T> T get() {
  T v;
  if (std::fread(&v, sizeof v, 1, stdin) != 1) throw Failure("the driver closed the pipe");
  return v;
}

inline void get_bytes(void* p, uint64_t n) {
  if (n > 0 && std::fread(p, 1, n, stdin) != n) throw Failure("the driver closed the pipe");
}

template <class T> void put(T v) { std::fwrite(&v, sizeof v, 1, stdout); }

inline void put_string(const std::string& s) {
  put<uint32_t>((uint32_t)s.size());
  std::fwrite(s.data(), 1, s.size(), stdout);
}

inline std::vector<uint64_t> get_offsets() {
  std::vector<uint64_t> v(get<uint32_t>());
  for (auto& o : v) o = get<uint64_t>();
  return v;
}

template <class Device> int serve(const std::string& dir, const Job& job) {
  uint64_t total = 0;
  std::string device;
  Schedule schedule;
  try {
    device = Device::open(&total, job.local());
    schedule = load_schedule(dir + "/schedule.txt");
  } catch (const Failure& f) {
    std::fprintf(stderr, "%s\n", f.what());
    return 1;
  }
  Device rt(std::move(schedule));
  std::setvbuf(stdout, nullptr, _IOFBF, 1 << 20);
  for (;;) {
    const uint32_t op = get<uint32_t>();
    if (op == QUIT) return 0;
    try {
      switch (op) {
        case INFO:
          put<uint32_t>(0);
          put_string(device);
          put<uint32_t>(Device::emulated ? 1 : 0);
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
          // The request is read whole first: sizing the staging buffer may reallocate it.
          struct Run {
            uint32_t graph;
            unsigned words[2];  // {seed, step}
            std::vector<uint64_t> pinned;
            std::vector<std::pair<uint64_t, uint64_t>> writes, reads;
          };
          std::vector<Run> runs(get<uint32_t>());
          std::vector<unsigned char> data;
          uint64_t out = 0;
          for (Run& r : runs) {
            r.graph = get<uint32_t>();
            r.words[0] = get<uint32_t>();
            r.words[1] = get<uint32_t>();
            r.pinned = get_offsets();
            r.writes.resize(get<uint32_t>());
            for (auto& [offset, n] : r.writes) {
              offset = get<uint64_t>();
              n = get<uint64_t>();
              data.resize(data.size() + n);
              get_bytes(data.data() + data.size() - n, n);
            }
            r.reads.resize(get<uint32_t>());
            for (auto& [offset, n] : r.reads) {
              offset = get<uint64_t>();
              n = get<uint64_t>();
              out += n;
            }
          }
          // Staging: [each run's rng words | inputs | outputs], all valid until the one sync at the end.
          const uint64_t words = 8 * runs.size();
          unsigned char* stage = rt.staging(words + data.size() + out);
          std::memcpy(stage + words, data.data(), data.size());
          uint64_t in = words, at = words + data.size();
          for (size_t i = 0; i < runs.size(); ++i) {
            const Run& r = runs[i];
            unsigned* rng = reinterpret_cast<unsigned*>(stage + 8 * i);
            std::memcpy(rng, r.words, sizeof r.words);
            for (auto& [offset, n] : r.writes) {
              rt.write(offset, stage + in, n);
              in += n;
            }
            rt.launch(r.graph, rng, r.pinned);
            for (auto& [offset, n] : r.reads) {
              rt.read(offset, stage + at, n);
              at += n;
            }
          }
          rt.sync();
          put<uint32_t>(0);
          std::fwrite(stage + words + data.size(), 1, out, stdout);
          break;
        }
        case RANKS:
          put<uint32_t>(0);
          put<uint32_t>((uint32_t)job.rank());
          put<uint32_t>((uint32_t)job.ranks());
          put_string(Job::collective());
          break;
        case ALLREDUCE: {
          const uint64_t offset = get<uint64_t>(), n = get<uint64_t>();
          float* values = reinterpret_cast<float*>(rt.staging(n * sizeof(float)));
          rt.read(offset, values, n * sizeof(float));
          rt.sync();
          job.mean(values, n);
          rt.write(offset, values, n * sizeof(float));
          rt.sync();
          put<uint32_t>(0);
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
    } catch (const DeviceLost& f) {
      put<uint32_t>(1);
      put_string(std::string(f.what()) + "; the device can run nothing more after this error, so the program has ended");
      std::fflush(stdout);
      return 1;
    } catch (const Failure& f) {
      put<uint32_t>(1);
      put_string(f.what());
    }
    std::fflush(stdout);
  }
}

/** The program's `main`: `info` or `serve DIR`. */
template <class Device> int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "info" && argc == 2) {
    try {
      uint64_t total = 0;
      std::printf("%s\n", Device::open(&total, 0).c_str());
      return 0;
    } catch (const Failure& f) {
      std::fprintf(stderr, "%s\n", f.what());
      return 1;
    }
  }
  if (command == "serve" && argc == 3) {
#ifdef __linux__
    // The driver is this program's only user: when it dies (killed, or ended by mpirun), so does the program,
    // even inside a collective that waits for a rank that is gone.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    const Job job(&argc, &argv);
    try {
      return serve<Device>(argv[2], job);
    } catch (const Failure& f) {
      std::fprintf(stderr, "%s\n", f.what());  // the pipe closed
      return 1;
    }
  }
  std::fprintf(stderr, "usage: %s info | serve DIR\n", argv[0]);
  return 2;
}

}  // namespace ulc
