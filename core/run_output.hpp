// The engine output of each run ("run logs"), kept where every host can read
// it: on refs/gigafab/logs, beside the state ref rather than on it, because
// output is not a transition and the audit trail must stay readable.
//
//   <shard>/<job-id>/<epoch>/<offset>     one chunk of the run's output
//
// <offset> (12 digits) is the chunk's first byte in the run's whole output.
// A reader that has the first N bytes asks for what follows N; a writer that
// retries an append it is unsure about sends the same offset again, and the
// bytes already stored are not stored twice. A run keeps only its last
// k_run_output_limit bytes in the tree: older chunks leave it, and the start
// of what is kept moves on.
// Output is UTF-8: an agent makes it so as it reads (Utf8Stream).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

inline constexpr const char* k_logs_ref = "refs/gigafab/logs";
inline constexpr std::int64_t k_run_output_limit = 1 << 20;   // kept per run
inline constexpr std::size_t k_output_append_limit = 256 << 10;  // per append

// What a reader gets: the run's output from `from` on.
struct RunOutput {
  std::string job;
  std::int64_t epoch = 0;
  std::int64_t start = 0;  // the first byte still kept (older output was dropped)
  std::int64_t end = 0;    // bytes written in all
  std::int64_t from = 0;   // where `text` starts: max(requested, start)
  std::string text;
  bool live = false;       // the run has not ended: more may follow
};

// Appends `text`, the run's output from byte `offset` on. Bytes before the
// stored end are skipped (a retried append stores nothing twice); an offset
// past the end leaves a gap (output the writer could not keep). Keeps the
// last k_run_output_limit bytes. Usage errors: text over
// k_output_append_limit, not UTF-8, negative offset. An empty change when
// nothing is new.
struct OutputAppend {
  Change change;
  std::int64_t end = 0;  // bytes written in all, after the append
};
Result<OutputAppend> append_run_output(const Snapshot& logs, const std::string& job_id, std::int64_t epoch,
                                 std::int64_t offset, std::string_view text);

// The output of one run from `from` on (`live` is left false: the caller
// knows from the state whether the run is over).
Result<RunOutput> read_run_output(const Snapshot& logs, const std::string& job_id, std::int64_t epoch,
                                  std::int64_t from);

// The chunk directory of one run.
std::string run_output_dir(std::string_view job_id, std::int64_t epoch);

bool is_utf8(std::string_view text);

// Turns a byte stream into UTF-8 as it arrives: each invalid byte becomes
// U+FFFD, and a sequence split across two reads is held back until it is
// complete (or proven invalid).
class Utf8Stream {
 public:
  std::string feed(std::string_view bytes);
  // What is still held back, replaced (at the end of the stream).
  std::string finish();

 private:
  std::string m_pending;
};

}  // namespace gigafab::core
