// OpenTelemetry set up the way its docs show, for the peers bench: a Node tracer provider whose spans are batched
// to an exporter that counts and discards them (what is measured is the instrumentation, not an export).
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node'

/** Registers a global tracer provider that discards its spans; `spans()` tells how many were exported. */
export function discardingTracer(): { provider: NodeTracerProvider; spans(): number } {
  let spans = 0
  const provider = new NodeTracerProvider({
    spanProcessors: [
      new BatchSpanProcessor({
        export(batch, done) {
          spans += batch.length
          done({ code: 0 })
        },
        shutdown: async () => {},
      }),
    ],
  })
  provider.register()
  return { provider, spans: () => spans }
}
