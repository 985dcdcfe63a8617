#include "core/run_output.hpp"

#include <cstdio>

#include "core/ids.hpp"
#include "core/layout.hpp"

namespace gigafab::core {

namespace {

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the valid UTF-8 sequence at p[0..avail), or 0 when it is
// invalid. `incomplete` is set when what is there is a valid start of a
// sequence that needs more bytes.
std::size_t sequence_length(const unsigned char* p, std::size_t avail, bool& incomplete) {
  incomplete = false;
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  for (std::size_t i = 1; i < len; ++i) {
    if (i >= avail) {
      incomplete = true;
      return 0;
    }
    unsigned char b = p[i];
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}

std::string chunk_name(std::int64_t offset) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012lld", static_cast<long long>(offset));
  return buf;
}

std::optional<std::int64_t> chunk_offset(const std::string& name) {
  if (name.size() != 12 || name.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(name);
}

struct Chunk {
  std::int64_t offset = 0;
  std::string name;
};

Result<std::vector<Chunk>> chunks_of(const Snapshot& logs, const std::string& dir) {
  auto names = logs.list(dir);
  if (!names) return names.error();
  std::vector<Chunk> out;
  for (auto& name : *names) {
    if (auto offset = chunk_offset(name)) out.push_back({*offset, std::move(name)});
  }
  return out;  // names sort bytewise, so by offset
}

Result<std::string> read_chunk(const Snapshot& logs, const std::string& dir, const Chunk& chunk) {
  auto text = logs.read(dir + "/" + chunk.name);
  if (!text) return text.error();
  if (!*text) return make_error(ErrorCode::error, "run output chunk " + dir + "/" + chunk.name + " vanished");
  return std::move(**text);
}

Result<void> validate_run(const std::string& job_id, std::int64_t epoch) {
  if (auto ok = validate_job_id(job_id); !ok) return ok.error();
  if (epoch < 1) return make_error(ErrorCode::usage, "epoch must be a positive integer");
  return {};
}

}  // namespace

std::string run_output_dir(std::string_view job_id, std::int64_t epoch) {
  return layout::job_shard(job_id) + "/" + std::string(job_id) + "/" + std::to_string(epoch);
}

bool is_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0;
  while (i < text.size()) {
    bool incomplete;
    std::size_t len = sequence_length(p + i, text.size() - i, incomplete);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string Utf8Stream::feed(std::string_view bytes) {
  std::string data = std::move(m_pending);
  data.append(bytes);
  m_pending.clear();
  std::string out;
  out.reserve(data.size());
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t i = 0;
  while (i < data.size()) {
    bool incomplete;
    std::size_t len = sequence_length(p + i, data.size() - i, incomplete);
    if (incomplete) {
      m_pending = data.substr(i);
      break;
    }
    if (len == 0) {
      out += k_replacement;
      ++i;
      continue;
    }
    out.append(data, i, len);
    i += len;
  }
  return out;
}

std::string Utf8Stream::finish() {
  std::string out;
  for (std::size_t i = 0; i < m_pending.size(); ++i) out += k_replacement;
  m_pending.clear();
  return out;
}

Result<OutputAppend> append_run_output(const Snapshot& logs, const std::string& job_id, std::int64_t epoch,
                                 std::int64_t offset, std::string_view text) {
  if (auto ok = validate_run(job_id, epoch); !ok) return ok.error();
  if (offset < 0) return make_error(ErrorCode::usage, "offset must not be negative");
  if (text.size() > k_output_append_limit) {
    return make_error(ErrorCode::usage, "an append holds at most " + std::to_string(k_output_append_limit) +
                                            " bytes of output (got " + std::to_string(text.size()) + ")");
  }
  if (!is_utf8(text)) return make_error(ErrorCode::usage, "run output must be UTF-8");
  std::string dir = run_output_dir(job_id, epoch);
  auto chunks = chunks_of(logs, dir);
  if (!chunks) return chunks.error();
  std::int64_t end = 0;
  if (!chunks->empty()) {
    auto last = read_chunk(logs, dir, chunks->back());
    if (!last) return last.error();
    end = chunks->back().offset + static_cast<std::int64_t>(last->size());
  }
  // Skip what is stored already, without cutting a character in two.
  std::int64_t skip = std::max<std::int64_t>(0, end - offset);
  if (skip >= static_cast<std::int64_t>(text.size())) return OutputAppend{{}, end};
  while (skip > 0 && skip < static_cast<std::int64_t>(text.size()) &&
         (static_cast<unsigned char>(text[static_cast<std::size_t>(skip)]) & 0xC0) == 0x80) {
    ++skip;
  }
  if (skip >= static_cast<std::int64_t>(text.size())) return OutputAppend{{}, end};
  std::int64_t at = offset + skip;
  std::string_view piece = text.substr(static_cast<std::size_t>(skip));
  std::int64_t new_end = at + static_cast<std::int64_t>(piece.size());

  Change change;
  change.put(dir + "/" + chunk_name(at), std::string(piece));
  for (const auto& chunk : *chunks) {
    if (new_end - chunk.offset <= k_run_output_limit) break;
    change.remove(dir + "/" + chunk.name);
  }
  change.summary = "output " + job_id + " epoch " + std::to_string(epoch) + ": bytes " + std::to_string(at) + "-" +
                   std::to_string(new_end);
  change.trailers = {{"Gigafab-Op", "output"}, {"Gigafab-Job", job_id}, {"Gigafab-Epoch", std::to_string(epoch)}};
  return OutputAppend{std::move(change), new_end};
}

Result<RunOutput> read_run_output(const Snapshot& logs, const std::string& job_id, std::int64_t epoch,
                                  std::int64_t from) {
  if (auto ok = validate_run(job_id, epoch); !ok) return ok.error();
  if (from < 0) return make_error(ErrorCode::usage, "--from must not be negative");
  std::string dir = run_output_dir(job_id, epoch);
  auto chunks = chunks_of(logs, dir);
  if (!chunks) return chunks.error();
  RunOutput out;
  out.job = job_id;
  out.epoch = epoch;
  out.start = chunks->empty() ? 0 : chunks->front().offset;
  out.from = std::max(from, out.start);
  std::int64_t end = out.start;
  for (std::size_t i = 0; i < chunks->size(); ++i) {
    const Chunk& chunk = (*chunks)[i];
    bool last = i + 1 == chunks->size();
    // A chunk that ends before `from` need not be read (the next one starts after it).
    if (!last && (*chunks)[i + 1].offset <= out.from) continue;
    auto text = read_chunk(logs, dir, chunk);
    if (!text) return text.error();
    std::int64_t chunk_end = chunk.offset + static_cast<std::int64_t>(text->size());
    end = chunk_end;
    if (chunk_end <= out.from) continue;
    std::int64_t cut = std::max<std::int64_t>(0, out.from - chunk.offset);
    if (out.text.empty() && cut == 0 && chunk.offset > out.from) out.from = chunk.offset;  // a gap
    out.text.append(*text, static_cast<std::size_t>(cut));
  }
  out.end = end;
  if (out.from > out.end) out.from = out.end;
  return out;
}

}  // namespace gigafab::core
