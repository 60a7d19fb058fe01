"""Built-in target descriptions (YAML). Installed as the package hwsim._builtin_targets."""
