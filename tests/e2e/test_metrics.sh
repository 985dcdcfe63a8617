# Fleet metrics: jobs per stage, factory health and utilization, starvation
# alerts once GIGAFAB_NOW ages a queued job past the window, the JSON
# document, the human summary and the Prometheus text for every product.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
T0=1800000000000
MIN=60000
at() { local t=$1; shift; GIGAFAB_NOW=$t "$GIGAFAB" "$@"; }

# An empty store: zeros, every stage present.
run at $T0 --json metrics
expect_rc 0
expect_eq "$(json 'd["productId"], len(d["jobs"]), sum(d["jobs"].values()), d["factories"]["total"], d["factories"]["utilization"]')" \
  "default 9 0 0 0.0" "empty store"
expect_eq "$(json 'd["starvation"]["count"], d["starvation"]["alerts"], d["oldestQueuedSeconds"], d["generatedAt"]')" \
  "0 [] 0 2027-01-15T08:00:00.000Z" "empty store: nothing starves"

manifest a.md "Old job" 'priority = "low"\n'
manifest b.md "Long build"
manifest d.md "Quick fix"
manifest c.md "Newer job"
A=$(at $T0 submit a.md)
B=$(at $((T0 + MIN)) submit b.md)
D=$(at $((T0 + MIN + 1)) submit d.md)
at $T0 factory heartbeat --factory f2 --seats 3 >/dev/null
at $T0 factory heartbeat --factory f3 --seats 4 >/dev/null
# f1 takes the two normal jobs (the low one waits), builds one, reports the other.
at $((T0 + 3 * MIN)) factory heartbeat --factory f1 --seats 2 >/dev/null
run at $((T0 + 3 * MIN)) claim --factory f1 --ttl 7200
expect_eq "$OUT" "$B 1" "f1 claims the older normal job"
run at $((T0 + 3 * MIN)) claim --factory f1 --ttl 7200
expect_eq "$OUT" "$D 1" "f1 claims the other normal job"
at $((T0 + 3 * MIN)) start "$B" --epoch 1 --factory f1 >/dev/null
at $((T0 + 3 * MIN)) start "$D" --epoch 1 --factory f1 >/dev/null
at $((T0 + 4 * MIN)) report "$D" --epoch 1 --factory f1 --result pass --cost 1.5 --tokens 300 >/dev/null
C=$(at $((T0 + 20 * MIN)) submit c.md)
gf --product other submit b.md >/dev/null
# At minute 40: f1 healthy, f2 degraded (60 s silent), f3 down (40 min silent).
NOW=$((T0 + 40 * MIN))
at $((NOW - 10000)) factory heartbeat --factory f1 >/dev/null
at $((NOW - 60000)) factory heartbeat --factory f2 >/dev/null
before=$(tip $S)

run at $NOW --json metrics
expect_rc 0
expect_eq "$(json 'd["jobs"]["queued"], d["jobs"]["building"], d["jobs"]["testing"], d["jobs"]["blocked"], d["jobs"]["dead_letter"]')" \
  "2 1 1 0 0" "jobs per stage"
expect_eq "$(json '[d["factories"][k] for k in ("total", "healthy", "degraded", "down", "seats", "seatsUsed", "liveSeats", "liveSeatsUsed")]')" \
  "[3, 1, 1, 1, 9, 1, 5, 1]" "factories"
expect_eq "$(json 'd["factories"]["utilization"]')" "0.2" "utilization: 1 of the 5 live seats"
expect_eq "$(json 'd["starvation"]["windowSeconds"], d["starvation"]["count"], len(d["starvation"]["alerts"])')" "1800 1 1" "one job starves"
expect_eq "$(json '[d["starvation"]["alerts"][0][k] for k in ("id", "title", "priority", "waitingSeconds", "createdAt")]')" \
  "['$A', 'Old job', 'low', 2400, '2027-01-15T08:00:00.000Z']" "the alert"
expect_eq "$(json 'd["oldestQueuedSeconds"], d["spentUsd"], d["spentTokens"], d["generatedAt"]')" \
  "2400 1.5 300 2027-01-15T08:40:00.000Z" "oldest queued, spend, time"
expect_eq "$(tip $S)" "$before" "metrics writes nothing"

# Twenty minutes later the newer job starves too; the oldest comes first.
run at $((NOW + 20 * MIN)) --json metrics
expect_eq "$(json '[(a["id"], a["waitingSeconds"]) for a in d["starvation"]["alerts"]]')" \
  "[('$A', 3600), ('$C', 2400)]" "alerts oldest first"
# The window is the product's setting.
gf weights set starvation_window=45m >/dev/null
run at $NOW --json metrics
expect_eq "$(json 'd["starvation"]["windowSeconds"], d["starvation"]["count"]')" "2700 0" "a longer window"
gf weights set starvation_window=30m >/dev/null

# The human summary.
run at $NOW metrics
expect_rc 0
expect_out_re "jobs +queued 2, blocked 0, assigned 0, building 1, review 0, testing 1, shipped 0, failed 0, dead_letter 0"
expect_out_re "factories +3: 1 healthy, 1 degraded, 1 down"
expect_out_re "seats +1/9 used; live factories 1/5, utilization 20%"
expect_out_re "oldest queued +40m"
expect_out_re "spent +\\\$1.50, 300 tokens"
expect_out_re "starving +1 queued longer than 30m"
expect_out_re "$A +low +40m +2027-01-15T08:00:00.000Z +Old job"

# Other products are apart; --prometheus reports them all.
run at $NOW --product other --json metrics
expect_eq "$(json 'd["productId"], d["jobs"]["queued"], d["factories"]["total"]')" "other 1 0" "another product"
run at $NOW metrics --prometheus
expect_rc 0
for line in \
  'gigafab_jobs{product="default",stage="queued"} 2' \
  'gigafab_jobs{product="default",stage="building"} 1' \
  'gigafab_jobs{product="default",stage="dead_letter"} 0' \
  'gigafab_jobs{product="other",stage="queued"} 1' \
  'gigafab_factories{product="default",health="healthy"} 1' \
  'gigafab_factories{product="default",health="degraded"} 1' \
  'gigafab_factories{product="default",health="down"} 1' \
  'gigafab_factories{product="other",health="down"} 0' \
  'gigafab_seats{product="default"} 9' \
  'gigafab_seats_used{product="default"} 1' \
  'gigafab_utilization_ratio{product="default"} 0.2' \
  'gigafab_starving_jobs{product="default"} 1' \
  'gigafab_oldest_queued_seconds{product="default"} 2400' \
  'gigafab_spent_usd_total{product="default"} 1.5' \
  'gigafab_spent_tokens_total{product="default"} 300' \
  '# TYPE gigafab_jobs gauge' \
  '# TYPE gigafab_spent_usd_total counter'; do
  grep -qxF "$line" <<<"$OUT" || fail "prometheus output lacks the line: $line"
done
# Well-formed: every family described once before its samples, every sample
# "name{labels} value".
python3 - "$OUT" <<'EOF' || fail "malformed exposition"
import re, sys
seen_help, seen_type, samples = set(), set(), 0
for line in sys.argv[1].splitlines():
    if line.startswith("# HELP "):
        name = line.split()[2]; assert name not in seen_help, line; seen_help.add(name)
    elif line.startswith("# TYPE "):
        _, _, name, kind = line.split(); assert kind in ("gauge", "counter"), line
        assert name in seen_help and name not in seen_type, line; seen_type.add(name)
    else:
        m = re.fullmatch(r'(gigafab_[a-z_]+)\{product="[^"\\]*"(,(stage|health)="[a-z_]+")?\} (-?[0-9.e+]+)', line)
        assert m and m.group(1) in seen_type, line
        float(m.group(4)); samples += 1
assert samples == 2 * (9 + 3 + 7), samples
EOF

# Bad input.
run gf metrics --prometheus --json
expect_rc 2
expect_err "--prometheus and --json cannot be combined"
run gf --product ../x metrics
expect_rc 2
expect_err "gigafab: metrics: "
run gf --json metrics --bogus
expect_rc 2
pass
