/* A stand-in for NVIDIA's libnvidia-ml.so.1, for tests on a machine without a GPU.
 *
 * It exports the entry points GhubAi Tray calls, with NVML's signatures and
 * structure, and answers from a text file named by FAKE_NVML_PROCESSES, read
 * at every call: one line per process, "compute PID BYTES" or "graphics PID BYTES"
 * (BYTES "na" for NVML_VALUE_NOT_AVAILABLE). One device. FAKE_NVML_FAIL_INIT set:
 * nvmlInit_v2 fails as it does without a driver.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef void *nvmlDevice_t;
static int device_token;

int nvmlInit_v2(void) { return getenv("FAKE_NVML_FAIL_INIT") ? 9 /* DRIVER_NOT_LOADED */ : 0; }
int nvmlShutdown(void) { return 0; }

int nvmlDeviceGetCount_v2(unsigned int *count) {
    *count = 1;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (index != 0) return 2; /* INVALID_ARGUMENT */
    *device = &device_token;
    return 0;
}

static int list(const char *kind, unsigned int *count, nvmlProcessInfo_t *infos) {
    const char *path = getenv("FAKE_NVML_PROCESSES");
    unsigned int found = 0;
    FILE *file = path ? fopen(path, "r") : NULL;
    if (file) {
        char what[32], bytes[32];
        unsigned int pid;
        while (fscanf(file, "%31s %u %31s", what, &pid, bytes) == 3) {
            if (strcmp(what, kind) != 0) continue;
            if (found < *count) {
                infos[found].pid = pid;
                infos[found].usedGpuMemory =
                    strcmp(bytes, "na") == 0 ? ~0ULL : strtoull(bytes, NULL, 10);
                infos[found].gpuInstanceId = ~0U;
                infos[found].computeInstanceId = ~0U;
            }
            found++;
        }
        fclose(file);
    }
    if (found > *count) {
        *count = found;
        return 7; /* INSUFFICIENT_SIZE */
    }
    *count = found;
    return 0;
}

int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                            nvmlProcessInfo_t *infos) {
    (void)device;
    return list("compute", count, infos);
}

int nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                             nvmlProcessInfo_t *infos) {
    (void)device;
    return list("graphics", count, infos);
}
