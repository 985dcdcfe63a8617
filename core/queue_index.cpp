#include "core/queue_index.hpp"

#include <algorithm>
#include <map>

#include "core/layout.hpp"
#include "core/toml_schema.hpp"

namespace gigafab::core::queue_index {

namespace {

bool is_bucket(std::string_view name) { return name.size() > 1 && name[0] == '@'; }
std::string_view key_of(std::string_view bucket) { return bucket.substr(1); }
std::string bucket_name(std::string_view entry) {
  // Built by append, not "@" + std::string(entry): gcc 12 at -O3 warns of an
  // impossible overlap in the latter (-Werror=restrict), failing Release builds.
  std::string name;
  name.reserve(entry.size() + 1);
  name += '@';
  name += entry;
  return name;
}

// Whether an entry's name carries affinity hints: such entries keep to
// buckets of their own, so that each sequence (rank, hinted or not) is in
// order by itself and a claim can stop early in each.
bool hinted(std::string_view entry) {
  auto parsed = layout::parse_queued_entry_name(entry);
  return parsed && (parsed->has_engine || parsed->has_last_factory);
}

// The bucket `entry` belongs in among `names` (a capset's children, sorted):
// the last bucket of its sequence (rank, hinted) not after it, else the
// sequence's first; "" when the sequence has none.
std::string bucket_for(const std::vector<std::string>& names, std::string_view entry) {
  const bool entry_hinted = hinted(entry);
  std::string first, chosen;
  for (const auto& name : names) {
    if (!is_bucket(name) || name[1] != entry[0] || hinted(key_of(name)) != entry_hinted) continue;
    if (first.empty()) first = name;
    if (key_of(name) <= entry) {
      chosen = name;
    } else {
      break;
    }
  }
  return chosen.empty() ? first : chosen;
}

// Moves the entries `names` of bucket `from` to bucket `to` (both under `dir`).
Result<void> move_entries(const Snapshot& view, Change& change, const std::string& dir, const std::string& from,
                          const std::string& to, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    std::string old_path = dir + "/" + from + "/" + name;
    auto content = view.read(old_path);
    if (!content) return content.error();
    if (!*content) return make_error(ErrorCode::error, "queue entry vanished: " + old_path);
    std::string text = std::move(**content);
    change.remove(old_path);
    change.put(dir + "/" + to + "/" + name, std::move(text));
  }
  return {};
}

// Splits bucket `name` of `dir`, which holds `entries` (sorted), in two halves.
Result<void> split(const Snapshot& snap, Change& change, const std::string& dir, const std::string& name,
                   const std::vector<std::string>& entries) {
  OverlaySnapshot view(snap, change);
  std::size_t half = entries.size() / 2;
  std::vector<std::string> lower(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(half));
  std::vector<std::string> upper(entries.begin() + static_cast<std::ptrdiff_t>(half), entries.end());
  // Entries before the bucket's name (it is its rank's first) move with the
  // lower half to a bucket named after the first of them, so that the upper
  // half's bucket still sorts after it.
  std::string lower_bucket = key_of(name) <= lower.front() ? name : bucket_name(lower.front());
  std::string upper_bucket = bucket_name(upper.front());
  if (upper_bucket != name) {
    if (auto ok = move_entries(view, change, dir, name, upper_bucket, upper); !ok) return ok;
  }
  if (lower_bucket != name) {
    if (auto ok = move_entries(view, change, dir, name, lower_bucket, lower); !ok) return ok;
  }
  return {};
}

}  // namespace

std::string capset_dir(std::string_view product, std::string_view capset) {
  return layout::queued_dir(product) + "/" + std::string(capset);
}

namespace {

// Where `job`'s entry goes (or is) as `view` shows the index: its capset's
// directory, its name, and its bucket ("" when its sequence has none).
struct Place {
  std::string dir, entry, bucket;
};

Result<Place> place_of(const Snapshot& view, const Job& job) {
  Place p{capset_dir(job.product, layout::capset_name(job.capabilities)), layout::queued_entry_name(job), {}};
  auto names = view.list(p.dir);
  if (!names) return names.error();
  p.bucket = bucket_for(*names, p.entry);
  return p;
}

}  // namespace

Result<void> add(const Snapshot& snap, Change& change, const Job& job) {
  OverlaySnapshot view(snap, change);
  auto p = place_of(view, job);
  if (!p) return p.error();
  if (p->bucket.empty()) p->bucket = bucket_name(p->entry);
  change.put(p->dir + "/" + p->bucket + "/" + p->entry, layout::queued_entry_document(job));
  auto held = view.list(p->dir + "/" + p->bucket);
  if (!held) return held.error();
  if (held->size() <= k_bucket_max) return {};
  return split(snap, change, p->dir, p->bucket, *held);
}

Result<void> remove(const Snapshot& snap, Change& change, const Job& job) {
  OverlaySnapshot view(snap, change);
  auto p = place_of(view, job);
  if (!p) return p.error();
  if (!p->bucket.empty()) change.remove(p->dir + "/" + p->bucket + "/" + p->entry);
  return {};
}

Result<std::optional<std::string>> find(const Snapshot& snap, const Job& job) {
  auto p = place_of(snap, job);
  if (!p) return p.error();
  if (p->bucket.empty()) return std::optional<std::string>{};
  std::string path = p->dir + "/" + p->bucket + "/" + p->entry;
  auto content = snap.read(path);
  if (!content) return content.error();
  if (!*content) return std::optional<std::string>{};
  return std::optional<std::string>{path};
}

Result<std::vector<Bucket>> buckets(const Snapshot& snap, const std::string& capset_dir) {
  auto names = snap.list(capset_dir);
  if (!names) return names.error();
  std::vector<Bucket> out;
  out.reserve(names->size());
  for (auto& name : *names) {
    if (!is_bucket(name)) {
      return make_error(ErrorCode::error, "corrupt queue index: " + capset_dir + "/" + name +
                                              " is not a bucket (a store of format 1? open it with this gigafab to upgrade it)");
    }
    char rank = name[1];
    bool is_hinted = hinted(key_of(name));
    std::string path = capset_dir + "/" + name;
    out.push_back({std::move(name), rank, is_hinted, std::move(path)});
  }
  return out;
}

Result<std::vector<std::string>> entries(const Snapshot& snap, const std::string& capset_dir) {
  auto all = buckets(snap, capset_dir);
  if (!all) return all.error();
  std::vector<std::string> out;
  for (const auto& bucket : *all) {
    auto names = snap.list(bucket.path);
    if (!names) return names.error();
    out.insert(out.end(), std::make_move_iterator(names->begin()), std::make_move_iterator(names->end()));
  }
  return out;
}

Result<std::size_t> count(const Snapshot& snap, const std::string& capset_dir) {
  auto all = entries(snap, capset_dir);
  if (!all) return all.error();
  return all->size();
}

Result<bool> migrate_flat(const Snapshot& snap, Change& change) {
  auto products = snap.list("index/queued");
  if (!products) return products.error();
  bool migrated = false;
  for (const auto& product : *products) {
    auto capsets = snap.list(layout::queued_dir(product));
    if (!capsets) return capsets.error();
    for (const auto& capset : *capsets) {
      std::string dir = capset_dir(product, capset);
      auto names = snap.list(dir);
      if (!names) return names.error();
      // Format 1 names have no hints: the entry's document says whether
      // the job names an engine or ran before. Then each sequence (rank,
      // hinted) in order, in buckets half full, so the next adds do not split
      // at once.
      struct Moved {
        std::string old_name, new_name, content;
      };
      std::map<std::pair<char, bool>, std::vector<Moved>> sequences;
      for (const auto& name : *names) {
        if (is_bucket(name)) continue;
        auto content = snap.read(dir + "/" + name);
        if (!content) return content.error();
        if (!*content) return make_error(ErrorCode::error, "queue entry vanished: " + dir + "/" + name);
        auto doc = parse_toml(**content, dir + "/" + name);
        if (!doc) return doc.error();
        std::string hints = std::string((*doc)["engine"].value_or(std::string{}).empty() ? "" : "e") +
                            ((*doc)["last_factory"].value_or(std::string{}).empty() ? "" : "f");
        std::string new_name = name + (hints.empty() ? "" : "-" + hints);
        sequences[{name[0], !hints.empty()}].push_back({name, new_name, std::move(**content)});
      }
      for (auto& [sequence, moved] : sequences) {
        std::sort(moved.begin(), moved.end(), [](const Moved& a, const Moved& b) { return a.new_name < b.new_name; });
        for (std::size_t i = 0; i < moved.size(); ++i) {
          static_assert(k_bucket_max >= 2);
          const std::string& first = moved[i - i % (k_bucket_max / 2)].new_name;
          change.remove(dir + "/" + moved[i].old_name);
          change.put(dir + "/" + bucket_name(first) + "/" + moved[i].new_name, std::move(moved[i].content));
          migrated = true;
        }
      }
    }
  }
  return migrated;
}

}  // namespace gigafab::core::queue_index
