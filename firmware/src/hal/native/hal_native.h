/* Native Linux target: the HAL works on a PTY master file descriptor. */
#ifndef HAL_NATIVE_H
#define HAL_NATIVE_H

/* The fd the HAL writes to (non-blocking); -1 until set. */
void hal_native_set_fd(int fd);

#endif /* HAL_NATIVE_H */
