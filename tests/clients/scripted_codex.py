"""What the Codex tests share: a Codex home whose model is a scripted one on loopback (the
Responses API, `SCRIPTED_API_KEY` for its key)."""
import os


def write_config(codex_home, model_port, extra=""):
    """Writes CODEX_HOME/config.toml for the scripted model on `model_port`, then `extra`."""
    os.makedirs(codex_home, exist_ok=True)
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(f"""model = "scripted"
model_provider = "scripted"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.scripted]
name = "scripted"
base_url = "http://127.0.0.1:{model_port}/v1"
wire_api = "responses"
env_key = "SCRIPTED_API_KEY"
{extra}""")
