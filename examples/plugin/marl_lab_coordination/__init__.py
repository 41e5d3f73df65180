"""An example marl-lab plugin: VDN-S (:mod:`.vdn_s`) and the climbing game
(:mod:`.climbing`). marl-lab finds both through the entry points in
``pyproject.toml``; nothing here is imported by marl-lab itself."""
