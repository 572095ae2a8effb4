# CMake toolchain file: bare-metal Cortex-M4 (STM32F405/F407) with the GNU Arm
# Embedded toolchain (Debian: gcc-arm-none-eabi + libnewlib-arm-none-eabi).
#
#   cmake -S firmware -B build/stm32 -DML_TARGET=stm32f405 \
#         -DCMAKE_TOOLCHAIN_FILE=firmware/cmake/arm-none-eabi.cmake
#
# Soft float: neither Mbed TLS nor our code uses floating point, and a
# soft-float build needs no FPU enabling or lazy FP context stacking in
# interrupt handlers. Target link flags (newlib-nano, -nostartfiles, the
# linker script) come from the target in firmware/sources.json; there is no
# semihosting and no nosys stubs: the HAL provides the few syscalls the link
# needs (firmware/src/hal/stm32f4/syscalls.c).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)
set(CMAKE_SIZE arm-none-eabi-size)

# No crt0 or syscalls at configure time: try-compile static libraries only.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(ML_ARM_ARCH_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft")
set(CMAKE_C_FLAGS_INIT "${ML_ARM_ARCH_FLAGS}")
set(CMAKE_ASM_FLAGS_INIT "${ML_ARM_ARCH_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${ML_ARM_ARCH_FLAGS}")
set(CMAKE_C_FLAGS_MINSIZEREL_INIT "-Os -g -DNDEBUG")
set(CMAKE_EXECUTABLE_SUFFIX_C .elf)
set(CMAKE_EXECUTABLE_SUFFIX .elf)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
