"""marl-train configs of the plugin: algo/, env/ and tuned/ (found through the
``marl_lab.configs`` entry point)."""
