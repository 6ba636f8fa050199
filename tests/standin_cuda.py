"""A stand-in for NVIDIA's libcuda.so.1, compiled here with the machine's C compiler, so that
the code that reads the GPUs from the driver (runkit/session.py, docker/build_image.sh) runs
for real on a machine without a GPU.

It answers the five driver calls that code makes (cuInit, cuDeviceGetCount, cuDeviceGet,
cuDeviceGetName, cuDeviceGetAttribute for compute capability) for the GPUs listed in
STANDIN_CUDA_GPUS, "name=major.minor;...", numbered as NVIDIA's driver numbers them: inside
cuInit, after CUDA_VISIBLE_DEVICES (ordinals, read up to the first one that names no GPU).
Unlike the driver, which reads both once, every cuInit reads them again, so that one process
can be asked about several hosts in turn (tests/test_session.py's host matrix).
Each call is appended to the file STANDIN_CUDA_LOG, if set, so that a test sees who asked what.
Put the folder build() returns on LD_LIBRARY_PATH: ctypes.CDLL('libcuda.so.1') finds it there.
"""
import os
import shutil
import subprocess

SOURCE = r'''
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SUCCESS = 0, INVALID_VALUE = 1, NOT_INITIALIZED = 3, INVALID_DEVICE = 101 };
#define MAX_GPUS 16
static char names[MAX_GPUS][128];
static int majors[MAX_GPUS], minors[MAX_GPUS], visible[MAX_GPUS], count = -1;

static void logged(const char *call, int value) {
    const char *path = getenv("STANDIN_CUDA_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) { fprintf(f, "%s %d\n", call, value); fclose(f); }
}

int cuInit(unsigned int flags) {
    char *gpus = strdup(getenv("STANDIN_CUDA_GPUS") ? getenv("STANDIN_CUDA_GPUS") : "");
    char *entry, *save = NULL, *visible_list = getenv("CUDA_VISIBLE_DEVICES");
    int total = 0;
    logged("cuInit", (int)flags);
    if (flags != 0) return INVALID_VALUE;
    for (entry = strtok_r(gpus, ";", &save); entry && total < MAX_GPUS;
         entry = strtok_r(NULL, ";", &save)) {
        char *cc = strrchr(entry, '=');
        if (!cc || sscanf(cc + 1, "%d.%d", &majors[total], &minors[total]) != 2)
            return INVALID_VALUE;
        *cc = '\0';
        snprintf(names[total++], sizeof names[0], "%s", entry);
    }
    free(gpus);
    count = 0;
    if (!visible_list) {
        while (count < total) { visible[count] = count; count++; }
    } else {
        char *copy = strdup(visible_list), *item, *rest = NULL;
        for (item = strtok_r(copy, ",", &rest); item; item = strtok_r(NULL, ",", &rest)) {
            char *end;
            long ordinal = strtol(item, &end, 10);
            if (end == item || *end || ordinal < 0 || ordinal >= total) break;
            visible[count++] = (int)ordinal;
        }
        free(copy);
    }
    return SUCCESS;
}

int cuDeviceGetCount(int *n) {
    logged("cuDeviceGetCount", count);
    if (count < 0) return NOT_INITIALIZED;
    *n = count;
    return SUCCESS;
}

int cuDeviceGet(int *device, int ordinal) {
    logged("cuDeviceGet", ordinal);
    if (count < 0) return NOT_INITIALIZED;
    if (ordinal < 0 || ordinal >= count) return INVALID_DEVICE;
    *device = visible[ordinal];
    return SUCCESS;
}

static int known(int device) {
    int i;
    for (i = 0; i < count; i++) if (visible[i] == device) return 1;
    return 0;
}

int cuDeviceGetName(char *name, int len, int device) {
    logged("cuDeviceGetName", device);
    if (count < 0) return NOT_INITIALIZED;
    if (!known(device)) return INVALID_DEVICE;
    if (len <= 0) return INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", names[device]);
    return SUCCESS;
}

/* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76 (cuda.h); nothing else. */
int cuDeviceGetAttribute(int *value, int attribute, int device) {
    logged("cuDeviceGetAttribute", attribute);
    if (count < 0) return NOT_INITIALIZED;
    if (!known(device)) return INVALID_DEVICE;
    if (attribute == 75) *value = majors[device];
    else if (attribute == 76) *value = minors[device];
    else return INVALID_VALUE;
    return SUCCESS;
}
'''


def build(folder):
    """Compile the stand-in into folder/libcuda.so.1; return folder."""
    compiler = shutil.which('cc') or shutil.which('gcc')
    assert compiler, 'no C compiler (cc or gcc) on PATH to build the stand-in libcuda.so.1'
    os.makedirs(folder, exist_ok=True)
    source = os.path.join(folder, 'libcuda.c')
    with open(source, 'w') as f:
        f.write(SOURCE)
    built = subprocess.run([compiler, '-shared', '-fPIC', '-Wall', '-Werror',
                            '-Wl,-soname,libcuda.so.1', '-o',
                            os.path.join(folder, 'libcuda.so.1'), source],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=120)
    assert built.returncode == 0, built.stdout
    return folder
