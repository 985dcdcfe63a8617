# Shell completions are generated from the parser itself.
source "$(dirname "$0")/lib.sh"

run gf completion bash
expect_rc 0
echo "$OUT" >gigafab.bash
# Drive the bash completion function the way bash would.
complete_words() {  # complete_words WORD... -> candidates for the last word
  bash -c 'source ./gigafab.bash; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gigafab; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
expect_eq "$(complete_words gigafab su)" "submit" "bash: commands"
expect_eq "$(complete_words gigafab submit --idem)" "--idempotency-key" "bash: submit options"
[[ "$(complete_words gigafab list --)" == *"--stage"* ]] || fail "bash: list --stage"
[[ "$(complete_words gigafab list --)" == *"--json"* ]] || fail "bash: global options after a command"
expect_eq "$(complete_words gigafab profile s)" "show" "bash: nested subcommands"
# Every command in --help is completable.
commands=$(gf --help | awk '/commands.*:$/ {on=1; next} /^[^ ]/ {on=0} on && NF {print $1}')
[ "$(wc -l <<<"$commands")" -ge 20 ] || fail "could not read the commands from --help: $commands"
for cmd in $commands; do
  [[ "$(complete_words gigafab "$cmd")" == *"$cmd"* ]] || fail "bash: command $cmd not completed"
done

run gf completion zsh
expect_rc 0
echo "$OUT" >_gigafab
expect_out "#compdef gigafab"
expect_out "'submit:submit a job manifest; prints the job id'"
if command -v zsh >/dev/null; then zsh -n _gigafab || fail "zsh syntax"; fi

run gf completion fish
expect_rc 0
expect_out "complete -c gigafab -f -n '__fish_use_subcommand' -a log"
expect_out "__fish_seen_subcommand_from list' -l stage -r"

run gf completion tcsh
expect_rc 2
pass
