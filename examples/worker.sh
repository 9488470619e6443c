#!/bin/sh
# An example watchbot worker: one run per message, the message in the environment, the exit code decides.
#
#   0  done: the message is deleted
#   3  rejected: deleted, and a notification says so
#   4  not now: returned to the queue after a backoff delay, quietly
#   *  failure: returned after a backoff delay, with a notification
#
# It exercises everything a worker can do: a map-reduce job (reduce-mode progress and follow-up messages sent to
# $WorkTopic), a rejection, a retry, and a failure. The message kind is in $Subject:
#   map     "JOB PARTS"  split JOB into PARTS parts: set the total, send one `part` message per part
#   part    "JOB N"      do part N of JOB; the call that completes the last part sends the `reduce` message
#   reduce  "JOB"        combine the parts (once)
#   reject  any          exit 3: this message can never be processed
#   retry   any          exit 4 on the first receive (e.g. a resource not ready yet), then succeed
#   flaky   any          exit 1 on the first receive (a crash), then succeed
#
# Run it locally:   watchbot local --workers 4 --messages examples/messages.jsonl --until-empty -- examples/worker.sh
# The same script runs unchanged on AWS: there $WorkTopic is the stack's SNS topic and $ProgressTable its table.
set -eu

say() { echo "[worker] [$MessageId] $*"; }

case "${Subject:-}" in
map)
    set -- $Message
    job=$1 parts=$2
    watchbot progress set-total "$job" --total "$parts" >/dev/null
    n=1
    while [ "$n" -le "$parts" ]; do
        watchbot send --topic "$WorkTopic" --subject part --message "$job $n" >/dev/null
        n=$((n + 1))
    done
    say "map $job: sent $parts parts"
    ;;
part)
    set -- $Message
    job=$1 part=$2
    say "part $part of $job: working"
    # ... the real work of one part goes here ...
    finished=$(watchbot progress complete-part "$job" --part "$part")
    if [ "$finished" = "true" ]; then
        # Every part is done. Replays of a part message also see "true": reduce-sent keeps the reduce to one message.
        if ! watchbot progress status "$job" | grep -q '"reduceSent": *true'; then
            watchbot send --topic "$WorkTopic" --subject reduce --message "$job" >/dev/null
            watchbot progress reduce-sent "$job" >/dev/null
            say "part $part of $job: last part done, reduce sent"
        fi
    fi
    ;;
reduce)
    say "reduce $Message: all parts done"
    ;;
reject)
    say "rejecting: $Message"
    exit 3
    ;;
retry)
    if [ "$ApproximateReceiveCount" -eq 1 ]; then
        say "not ready yet, try again later"
        exit 4
    fi
    say "retry succeeded on receive $ApproximateReceiveCount"
    ;;
flaky)
    if [ "$ApproximateReceiveCount" -eq 1 ]; then
        say "crashing on the first try"
        exit 1
    fi
    say "flaky succeeded on receive $ApproximateReceiveCount"
    ;;
*)
    say "unknown subject '${Subject:-}': $Message"
    exit 3
    ;;
esac
