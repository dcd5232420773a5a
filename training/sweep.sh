#!/usr/bin/env bash
# Recipe sweep at a low, equal budget: 4 styles (sweep_styles.txt), SECONDS one-thread CPU seconds
# per recipe, two recipes at a time, each scored afterwards by `cin-style evaluate` on the 16
# validation photos (the fixed evaluation network: VGG16, style relu1_2..relu4_3, 256 px).
# Usage: bash training/sweep.sh [SECONDS] [RECIPE...]   (default 480 s, all recipes; runs/sweep/)
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-480}
shift || true
out=runs/sweep
mkdir -p "$out"
l3=relu1_2,relu2_2,relu3_3
l4=relu1_2,relu2_2,relu3_3,relu4_3
declare -A recipes=(
    [A_w16r3_112_l3]="--base-width 16 --residual-blocks 3 --image-size 112 --style-size 192 --style-layers $l3"
    [B_w32r5_128_l3]="--image-size 128 --style-size 256 --style-layers $l3"
    [C_w32r5_128_l4]="--image-size 128 --style-size 256 --style-layers $l4"
    [D_w32r5_192_l3]="--image-size 192 --style-size 320 --style-layers $l3"
    [E_w32r5_128of256_l3]="--image-size 128 --photo-size 256 --style-size 256 --style-layers $l3"
    [F_w32r5_128of256_l4]="--image-size 128 --photo-size 256 --style-size 256 --style-layers $l4"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(printf '%s\n' "${!recipes[@]}" | sort))
run() {  # one recipe on one thread, then its evaluation
    local name=$1
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 .venv/bin/cin-style train --styles training/sweep_styles.txt \
        --content training/train.txt --steps 1000000 --max-seconds "$budget" --lr 2e-3 \
        --content-weight 2 --style-weight 1e5 --tv-weight 0.1 --checkpoint-every 200 \
        --sample-every 1000000 --device cpu --out "$out/$name.pt" ${recipes[$name]} \
        > "$out/$name.log" 2>&1
}
for ((i = 0; i < ${#names[@]}; i += 2)); do
    run "${names[i]}" &
    [ $((i + 1)) -lt ${#names[@]} ] && run "${names[i + 1]}" &
    wait
done
for name in "${names[@]}"; do
    .venv/bin/cin-style evaluate "$out/$name.pt" --content training/validation.txt --limit 16 \
        --json -q --sheet "$out/${name}_sheet.jpg" > "$out/${name}_eval.json"
done
