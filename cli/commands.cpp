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
    Command{"events", "a job's event log", Needs::store, define_events},
    Command{"logs", "what a run's engine printed (--follow while it runs)", Needs::store, define_logs},
    Command{"claim", "lease the best queued job that fits; prints ID EPOCH", Needs::store, define_claim},
    Command{"renew", "extend a lease (fenced)", Needs::store, define_renew},
    Command{"start", "assigned -> building (fenced)", Needs::store, define_start},
    Command{"checkpoint", "record pushed work in progress (fenced)", Needs::store, define_checkpoint},
    Command{"report", "report a run's result: building -> review/testing/failed (fenced)", Needs::store,
            define_report},
    Command{"release", "give a job back to the queue, keeping its checkpoint (fenced)", Needs::store,
            define_release},
    Command{"approve", "review -> testing", Needs::store, define_approve},
    Command{"reject", "review -> failed", Needs::store, define_reject},
    Command{"ship", "testing -> shipped (unblocks dependents)", Needs::store, define_ship},
    Command{"requeue", "failed -> queued (or dead_letter when attempts are used up)", Needs::store, define_requeue},
    Command{"reap", "requeue jobs whose lease expired", Needs::store, define_reap},
    Command{"factory", "factories: heartbeat (register, liveness), list, enroll|rotate|revoke (API tokens)",
            Needs::store, define_factory},
    Command{"token", "operator API tokens for 'gigafab serve': create, list, revoke", Needs::store, define_token},
    Command{"remote", "the git remote that coordinates the fleet: add, remove, list", Needs::store, define_remote},
    Command{"sync", "fetch the coordinating remote; show the transitions that arrived", Needs::store, define_sync},
    Command{"agent", "the factory loop: claim jobs, run an engine on each in a worktree, push, report", Needs::store,
            define_agent},
    Command{"serve", "serve the /api/fleet REST API (with SSE) over this store", Needs::store, define_serve},
    Command{"explain", "the router's scores for a job on every factory", Needs::store, define_explain},
    Command{"weights", "the router's weights and thresholds: show, set", Needs::store, define_weights},
    Command{"metrics", "job counts, factory health, utilization, starvation alerts (--prometheus)", Needs::store,
            define_metrics},
    Command{"profile", "the persona catalog: list, show", Needs::nothing, define_profile},
    Command{"gc", "repack the store and drop unreferenced objects", Needs::store, define_gc},
    Command{"bench", "measure this machine's store on scratch stores, and a real fleet only when asked (--api, --remote)", Needs::nothing, define_bench},
    Command{"completion", "print a shell completion script (bash, zsh, fish)", Needs::nothing, define_completion},
};

}  // namespace

std::span<const Command> commands() { return k_commands; }

}  // namespace gigafab::cli
