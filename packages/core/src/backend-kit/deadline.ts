/**
 * `promise`, or the error of `onTimeout()` once `ms` milliseconds have passed, whichever comes
 * first. The timer is cleared as soon as the promise settles. A deadline does not stop work that
 * is already on its way to a server: callers state the outcome of what timed out as unknown.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
