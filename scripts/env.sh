# Sourced by the other scripts: where Vigil's build tools live and which versions are pinned.
export VIGIL_BPF_TOOLCHAIN="${VIGIL_BPF_TOOLCHAIN:-nightly-2026-05-20}"
export VIGIL_BPF_LINKER_VERSION="${VIGIL_BPF_LINKER_VERSION:-0.13.0}"
export VIGIL_CARGO_FUZZ_VERSION="${VIGIL_CARGO_FUZZ_VERSION:-0.13.2}"
export VIGIL_TOOLS="${VIGIL_TOOLS:-$HOME/.local/share/vigil-tools}"
# The schemas the formats are validated against, in a venv the format tests run
# (integrations/src/format/): the OCSF schema (PyPI `ocsf-json-schema`, which ships the OCSF
# schema of each release and generates a class's JSON Schema from it) with a validator for it
# (`jsonschema`), and the AWS service models of GuardDuty and Security Hub (`botocore`).
export VIGIL_OCSF_JSON_SCHEMA_VERSION="${VIGIL_OCSF_JSON_SCHEMA_VERSION:-1.2.0}"
export VIGIL_JSONSCHEMA_VERSION="${VIGIL_JSONSCHEMA_VERSION:-4.26.0}"
export VIGIL_BOTOCORE_VERSION="${VIGIL_BOTOCORE_VERSION:-1.44.8}"
export VIGIL_OCSF_PYTHON="${VIGIL_OCSF_PYTHON:-$VIGIL_TOOLS/ocsf-venv/bin/python}"
case ":$PATH:" in
  *":$VIGIL_TOOLS/bin:"*) ;;
  *) export PATH="$VIGIL_TOOLS/bin:$PATH" ;;
esac
case ":$PATH:" in
  *":$HOME/.cargo/bin:"*) ;;
  *) export PATH="$HOME/.cargo/bin:$PATH" ;;
esac
