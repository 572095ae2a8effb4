#include "core/ml_device.h"

struct ml_device ml_device;
