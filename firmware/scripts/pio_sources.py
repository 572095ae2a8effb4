# PlatformIO pre-script: builds the sources listed in firmware/sources.json
# (core + the env's target, chosen by `custom_ml_target`) so PlatformIO and
# CMake compile exactly the same files with the same flags. Mbed TLS comes
# from lib/mbedtls (library.json); TinyCBOR is built here from the list.
import glob
import json
import os

Import("env")  # noqa: F821  (SCons)

root = env.subst("$PROJECT_DIR")  # noqa: F821
with open(os.path.join(root, "sources.json"), encoding="utf-8") as f:
    spec = json.load(f)
target_name = env.GetProjectOption("custom_ml_target", "native")  # noqa: F821
target = spec["targets"][target_name]


def expand(paths):
    out = []
    for p in paths:
        out += sorted(glob.glob(os.path.join(root, p))) if "*" in p else [os.path.join(root, p)]
    return out


def define(d):
    name, _, value = d.partition("=")
    return (name, value) if value else name


core = spec["core"]
cbor = spec["libraries"]["tinycbor"]
tls = spec["libraries"]["mbedtls"]  # headers + config define, seen by every file
env.Append(  # noqa: F821
    CPPPATH=[os.path.join(root, d) for d in core["include_dirs"] + cbor["include_dirs"] + tls["include_dirs"]],
    CPPDEFINES=[define(d) for d in core["defines"] + target["defines"] + cbor["defines"] + tls["defines"]],
    CCFLAGS=spec["common_cflags"] + target.get("cflags", []),
    LINKFLAGS=target.get("ldflags", []),
)

# Our code gets the strict flags, TinyCBOR its relaxed ones.
strict = env.Clone()  # noqa: F821
strict.Append(CCFLAGS=core["cflags"])
relaxed = env.Clone()  # noqa: F821
relaxed.Append(CCFLAGS=cbor["cflags"])
objs = [strict.Object(s) for s in expand(core["sources"] + target["sources"])]
objs += [relaxed.Object(s) for s in expand(cbor["sources"])]
env.Append(PIOBUILDFILES=objs)  # noqa: F821
