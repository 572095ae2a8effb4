/* Native Linux target: the HAL works on a PTY master file descriptor. */
#ifndef HAL_NATIVE_H
#define HAL_NATIVE_H

/* The fd the HAL writes to (non-blocking); -1 until set. */
void hal_native_set_fd(int fd);

/* The key store medium (store_file.c): a file when a path is given (created
 * erased when missing), else RAM that does not survive the process.
 * Returns 0, or -1 with errno when the file cannot be used. */
int hal_native_store_open(const char *path);

#endif /* HAL_NATIVE_H */
