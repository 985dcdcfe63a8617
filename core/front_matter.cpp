#include "core/front_matter.hpp"

#include <cmark.h>

#include <memory>

namespace gigafab::core {

namespace {

std::string_view trim_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.remove_suffix(1);
  }
  return line;
}

}  // namespace

Result<FrontMatter> split_front_matter(std::string_view text, std::string_view origin) {
  FrontMatter out;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  std::size_t first_end = text.find('\n');
  std::string_view first = trim_line(text.substr(0, first_end));
  if (first != "+++") {
    out.body = std::string(text);
    return out;
  }
  out.present = true;
  out.toml = "\n";  // line 1 is the opening "+++"
  std::size_t pos = first_end == std::string_view::npos ? text.size() : first_end + 1;
  int line_number = 1;
  while (pos < text.size()) {
    ++line_number;
    std::size_t end = text.find('\n', pos);
    std::size_t next = end == std::string_view::npos ? text.size() : end + 1;
    std::string_view line = text.substr(pos, next - pos);
    if (trim_line(line.substr(0, line.size() - (line.ends_with('\n') ? 1 : 0))) == "+++") {
      out.body = std::string(text.substr(next));
      out.body_line = line_number + 1;
      return out;
    }
    out.toml += line;
    if (!line.ends_with('\n')) out.toml += '\n';
    pos = next;
  }
  return make_error(ErrorCode::usage,
                    std::string(origin) + ":1: front matter opened with '+++' is never closed (missing '+++' line)");
}

std::string first_heading(std::string_view markdown) {
  std::unique_ptr<cmark_node, decltype(&cmark_node_free)> doc(
      cmark_parse_document(markdown.data(), markdown.size(), CMARK_OPT_DEFAULT), &cmark_node_free);
  std::unique_ptr<cmark_iter, decltype(&cmark_iter_free)> iter(cmark_iter_new(doc.get()), &cmark_iter_free);
  cmark_node* heading = nullptr;
  std::string title;
  for (cmark_event_type ev; (ev = cmark_iter_next(iter.get())) != CMARK_EVENT_DONE;) {
    cmark_node* node = cmark_iter_get_node(iter.get());
    cmark_node_type type = cmark_node_get_type(node);
    if (!heading) {
      if (ev == CMARK_EVENT_ENTER && type == CMARK_NODE_HEADING) heading = node;
      continue;
    }
    if (node == heading && ev == CMARK_EVENT_EXIT) break;
    if (ev != CMARK_EVENT_ENTER) continue;
    if (type == CMARK_NODE_TEXT || type == CMARK_NODE_CODE) {
      title += cmark_node_get_literal(node);
    } else if (type == CMARK_NODE_SOFTBREAK || type == CMARK_NODE_LINEBREAK) {
      title += ' ';
    }
  }
  return title;
}

}  // namespace gigafab::core
