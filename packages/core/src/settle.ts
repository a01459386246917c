/**
 * Resolves once every promise has settled (rejections ignored) or `timeoutMs` has passed, whichever is first; the
 * timer never keeps the process alive. What `close()` of a background runner waits with.
 */
export async function settledWithin(promises: Iterable<Promise<unknown>>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs)
    timer.unref()
  })
  await Promise.race([Promise.allSettled(promises), limit])
  clearTimeout(timer)
}
