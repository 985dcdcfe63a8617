// gigafab submit FILE|- [--priority P] [--dep ID]... [--idempotency-key K] [--profile NAME]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"
#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/manifest.hpp"

namespace gigafab::cli {

namespace {

Result<std::string> read_input(const std::string& file) {
  std::stringstream text;
  if (file == "-") {
    text << std::cin.rdbuf();
    return text.str();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return core::make_error(core::ErrorCode::error, "cannot read " + file + ": " + std::strerror(errno));
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Runner define_submit(CLI::App& app, Context&) {
  struct Options {
    std::string file;
    std::string priority, idempotency_key, profile;
    std::vector<std::string> deps;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("file", opts->file, "the manifest (markdown with +++ TOML front matter), or - for stdin")
      ->required();
  app.add_option("--priority", opts->priority, "low, normal, high or critical (overrides the manifest)");
  app.add_option("--dep", opts->deps, "a job this one waits for (repeatable; overrides the manifest)");
  app.add_option("--idempotency-key", opts->idempotency_key, "submitting the same key again returns the same job");
  app.add_option("--profile", opts->profile, "persona profile (overrides the manifest)");
  return [opts](Context& ctx) -> Result<void> {
    // Validate everything from the command line before touching the store.
    auto text = read_input(opts->file);
    if (!text) return text.error();
    auto manifest = core::parse_manifest(*text, opts->file == "-" ? "<stdin>" : opts->file);
    if (!manifest) return manifest.error();
    if (!opts->priority.empty()) {
      auto priority = core::parse_priority(opts->priority);
      if (!priority) return priority.error();
      manifest->priority = *priority;
    }
    if (!opts->deps.empty()) {
      for (const auto& dep : opts->deps) {
        if (auto ok = core::validate_job_id(dep); !ok) return ok.error();
      }
      manifest->deps = opts->deps;
    }
    if (!opts->idempotency_key.empty()) manifest->idempotency_key = opts->idempotency_key;
    if (!opts->profile.empty()) {
      if (auto ok = core::validate_name("profile", opts->profile); !ok) return ok.error();
      manifest->profile = opts->profile;
    }
    if (auto ok = core::validate_name("product", ctx.globals.product); !ok) return ok.error();

    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto submitted = (*fleet)->submit(core::SubmitInput{std::move(*manifest), ctx.globals.product, std::move(*text)});
    if (!submitted) return submitted.error();
    if (ctx.globals.json) {
      print_json(core::submitted_to_json(*submitted));
    } else {
      std::printf("%s\n", submitted->job.id.c_str());
      if (submitted->duplicate) {
        std::fprintf(stderr, "gigafab: submit: idempotency key already used by %s; nothing submitted\n",
                     submitted->job.id.c_str());
      }
    }
    return {};
  };
}

}  // namespace gigafab::cli
