/* A stand-in for NVIDIA's libnvidia-ml.so.1, for tests on a machine without a GPU.
 *
 * It exports the entry points NVIDIA's nvidia-ml-py (pynvml) calls for GhubAi Tray,
 * with NVML's signatures and structures; built with the soname libnvidia-ml.so.1,
 * so that a test that loads it first makes pynvml's own CDLL("libnvidia-ml.so.1")
 * find it. It answers from files read at every call, so a test changes a reading
 * by rewriting a file:
 *
 * - FAKE_NVML_PROCESSES: one line per process, "compute PID BYTES" or
 *   "graphics PID BYTES" (BYTES "na" for NVML_VALUE_NOT_AVAILABLE), on GPU 0.
 * - FAKE_NVML_SENSORS: one line per reading, "GPU KEY VALUE": KEY one of name,
 *   temperature (degrees C), power_mw, limit_mw, fan (%), util (%). The number
 *   of GPUs is one more than the highest GPU named (at least one). A reading
 *   not given answers NVML_ERROR_NOT_SUPPORTED, as a card without the sensor does.
 *
 * With neither variable set, or FAKE_NVML_FAIL_INIT set, initialising fails as it
 * does without a driver (NVML_ERROR_DRIVER_NOT_LOADED): a test process that loaded
 * the fake sees "no driver" outside the tests that ask for one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUCCESS 0
#define INVALID_ARGUMENT 2
#define NOT_SUPPORTED 3
#define INSUFFICIENT_SIZE 7
#define DRIVER_NOT_LOADED 9
#define MAX_GPUS 8

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct { int index; } gpu_t;
typedef gpu_t *nvmlDevice_t;
static gpu_t gpus[MAX_GPUS] = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};

static int init(void) {
    if (getenv("FAKE_NVML_FAIL_INIT")) return DRIVER_NOT_LOADED;
    if (!getenv("FAKE_NVML_PROCESSES") && !getenv("FAKE_NVML_SENSORS")) return DRIVER_NOT_LOADED;
    return SUCCESS;
}

int nvmlInitWithFlags(unsigned int flags) { (void)flags; return init(); }
int nvmlInit_v2(void) { return init(); }
int nvmlShutdown(void) { return SUCCESS; }

/* The value of KEY for GPU (its text in out), or 0 when the file does not give it. */
static int sensor(int gpu, const char *key, char *out, size_t size) {
    const char *path = getenv("FAKE_NVML_SENSORS");
    FILE *file = path ? fopen(path, "r") : NULL;
    char line[256];
    int found = 0;
    if (!file) return 0;
    while (fgets(line, sizeof line, file)) {
        int index, used = 0;
        char name[32];
        if (sscanf(line, "%d %31s %n", &index, name, &used) < 2 || used == 0) continue;
        if (index != gpu || strcmp(name, key) != 0) continue;
        snprintf(out, size, "%s", line + used);
        out[strcspn(out, "\r\n")] = '\0';
        found = 1;
    }
    fclose(file);
    return found;
}

static int number(nvmlDevice_t device, const char *key, unsigned int *value) {
    char text[128];
    if (!device || !sensor(device->index, key, text, sizeof text)) return NOT_SUPPORTED;
    *value = (unsigned int)strtoul(text, NULL, 10);
    return SUCCESS;
}

int nvmlDeviceGetCount_v2(unsigned int *count) {
    const char *path = getenv("FAKE_NVML_SENSORS");
    FILE *file = path ? fopen(path, "r") : NULL;
    int highest = 0, index;
    char line[256];
    if (file) {
        while (fgets(line, sizeof line, file))
            if (sscanf(line, "%d", &index) == 1 && index > highest && index < MAX_GPUS)
                highest = index;
        fclose(file);
    }
    *count = (unsigned int)highest + 1;
    return SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    unsigned int count;
    nvmlDeviceGetCount_v2(&count);
    if (index >= count) return INVALID_ARGUMENT;
    *device = &gpus[index];
    return SUCCESS;
}

int nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    char text[128];
    if (!sensor(device->index, "name", text, sizeof text)) snprintf(text, sizeof text, "Fake GPU");
    snprintf(name, length, "%s", text);
    return SUCCESS;
}

int nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor_type, unsigned int *temp) {
    if (sensor_type != 0) return INVALID_ARGUMENT; /* NVML_TEMPERATURE_GPU only */
    return number(device, "temperature", temp);
}

int nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *milliwatts) {
    return number(device, "power_mw", milliwatts);
}

int nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *milliwatts) {
    return number(device, "limit_mw", milliwatts);
}

int nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *percent) {
    return number(device, "fan", percent);
}

int nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *rates) {
    unsigned int gpu;
    int result = number(device, "util", &gpu);
    if (result == SUCCESS) {
        rates->gpu = gpu;
        rates->memory = 0;
    }
    return result;
}

static int list(nvmlDevice_t device, const char *kind, unsigned int *count,
                nvmlProcessInfo_t *infos) {
    const char *path = getenv("FAKE_NVML_PROCESSES");
    unsigned int found = 0;
    FILE *file = path && device->index == 0 ? fopen(path, "r") : NULL;
    if (file) {
        char what[32], bytes[32];
        unsigned int pid;
        while (fscanf(file, "%31s %u %31s", what, &pid, bytes) == 3) {
            if (strcmp(what, kind) != 0) continue;
            if (infos && found < *count) {
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
        return INSUFFICIENT_SIZE;
    }
    *count = found;
    return SUCCESS;
}

int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                            nvmlProcessInfo_t *infos) {
    return list(device, "compute", count, infos);
}

int nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                             nvmlProcessInfo_t *infos) {
    return list(device, "graphics", count, infos);
}
