#include <array>

#include "cli/command.hpp"

namespace gigafab::cli {

namespace {

constexpr std::array k_commands = {
    Command{"init", "create a store (a bare git repository)", Needs::nothing, define_init},
    Command{"submit", "submit a job manifest; prints the job id", Needs::store, define_submit},
    Command{"list", "list jobs", Needs::store, define_list},
    Command{"show", "show one job, with its body", Needs::store, define_show},
    Command{"log", "the audit trail: one line per transition", Needs::store, define_log},
    Command{"profile", "the persona catalog: list, show", Needs::nothing, define_profile},
    Command{"completion", "print a shell completion script (bash, zsh, fish)", Needs::nothing, define_completion},
};

}  // namespace

std::span<const Command> commands() { return k_commands; }

}  // namespace gigafab::cli
