#!/bin/bash
# Writes libFuzzer seed inputs made from ../shared/conformance into
# build-fuzz/seeds/{expand,ignore}/ (see tests/fuzz/README.md).
set -euo pipefail
CONF=${KILN_CONFORMANCE:-../shared/conformance}
OUT=${1:-build-fuzz/seeds}
mkdir -p "$OUT/expand" "$OUT/ignore"
n=0
seed() { printf '%b' "$2" >"$OUT/$1/seed-$((n++))"; }
env_a='PWD=/home\nSHELL=bash\nKOREAN=한국어\nNULL='
# envVarTest: flags 0, word, the test environment
while IFS='|' read -r plat input _; do
    [[ $plat == \#* || -z $plat ]] && continue
    input=$(sed 's/[[:space:]]*$//' <<<"$input")
    printf '\0%s\n%b' "$input" "$env_a" >"$OUT/expand/seed-$((n++))"
    printf '\001%s\n%b' "$input" "$env_a" >"$OUT/expand/seed-$((n++))"
done <"$CONF/shell-words/envVarTest"
while IFS='|' read -r input _; do
    [[ $input == \#* || $input == ENV* || -z $input ]] && continue
    printf '\002%s\nhi=hi\nspace=abc  def\n' "$input" >"$OUT/expand/seed-$((n++))"
done <"$CONF/shell-words/wordsTest"
jq -r '[.input, (.env | join("\n"))] | @json' "$CONF/shell-words/lex_cases.jsonl" |
    while read -r row; do
        jq -j '"\u0000" + .[0] + "\n" + .[1]' <<<"$row" >"$OUT/expand/seed-$((n++))"
    done
# cases.tsv: patterns (one per line), NUL, path
tail -n +2 "$CONF/dockerignore/cases.tsv" | while IFS=$'\t' read -r pats path _; do
    { printf '%s' "$pats" | tr ';' '\n'; printf '\0%s' "$path"; } >"$OUT/ignore/seed-$((n++))"
done
jq -j '.input' "$CONF/dockerignore/readall.jsonl" >"$OUT/ignore/seed-readall"
echo "seeds: $(ls "$OUT/expand" | wc -l) expand, $(ls "$OUT/ignore" | wc -l) ignore"
