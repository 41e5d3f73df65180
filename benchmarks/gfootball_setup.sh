#!/usr/bin/env bash
# Build Google Research Football's real engine (gfootball 2.10.2) beside marl-lab,
# for the fidelity benchmark (benchmarks/football_fidelity.py). A benchmark
# dependency only: CI never needs it.
#
# The engine is C++ with Boost.Python bindings, so it has to be built against the
# same Python that Debian's Boost.Python was built for: Debian's own python3, not
# a pyenv/conda one. Takes about 7 minutes on 2 cores.
#
# Usage: bash benchmarks/gfootball_setup.sh [VENV_DIR]   (default: ../gfootball-venv)
# Then:  VENV_DIR/bin/python benchmarks/football_fidelity.py --engine-python VENV_DIR/bin/python
set -euo pipefail

venv_dir="${1:-$(cd "$(dirname "$0")/../.." && pwd)/gfootball-venv}"

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends \
    build-essential cmake git python3 python3-dev python3-venv \
    libsdl2-dev libsdl2-image-dev libsdl2-ttf-dev libsdl2-gfx-dev \
    libboost-all-dev libdirectfb-dev libst-dev mesa-utils xvfb

/usr/bin/python3 -m venv "$venv_dir"
# The engine's build runs `python3` from PATH (to find psutil): it must be this venv's.
export PATH="$venv_dir/bin:$PATH"
"$venv_dir/bin/pip" install -q --upgrade pip
"$venv_dir/bin/pip" install -q psutil six wheel setuptools 'gym==0.25.2' 'numpy<2'
# Without build isolation so that the build sees the setuptools and numpy above.
"$venv_dir/bin/pip" install --no-build-isolation 'gfootball==2.10.2'
# marl-lab itself (for the benchmark's side that runs our engine in the same process).
"$venv_dir/bin/pip" install -q -e "$(cd "$(dirname "$0")/.." && pwd)"

"$venv_dir/bin/python" - <<'PY'
import gfootball.env as football_env
env = football_env.create_environment(
    env_name="academy_empty_goal_close", representation="simple115v2",
    number_of_left_players_agent_controls=1, render=False)
obs = env.reset()
print("gfootball engine works: observation", getattr(obs, "shape", None))
env.close()
PY
