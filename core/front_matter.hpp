// Markdown documents with TOML front matter between "+++" lines: job
// manifests and persona profiles. This header stays free of toml++; the
// schema checker both parsers share lives in toml_schema.hpp.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace gigafab::core {

struct FrontMatter {
  // The TOML text, padded with blank lines so that toml++'s line numbers are
  // the document's own line numbers.
  std::string toml;
  bool present = false;  // the document opened with "+++"
  std::string body;      // everything after the closing "+++", verbatim
  int body_line = 1;     // the document line the body starts on
};

// Splits `text`. A document that does not start with "+++" has no front
// matter (all of it is body). An opening "+++" without a closing one is a
// usage error naming `origin` and the line it opened on.
Result<FrontMatter> split_front_matter(std::string_view text, std::string_view origin);

// The plain text of the first heading of a CommonMark document (cmark), or ""
// when it has none.
std::string first_heading(std::string_view markdown);

}  // namespace gigafab::core
