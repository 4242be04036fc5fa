import { Counter, Histogram, type Registry } from 'prom-client';

export interface BrokerMetrics {
  exchanges: Counter<'endpoint' | 'outcome' | 'reason'>;
  duration: Histogram<'endpoint' | 'outcome'>;
  rateLimited: Counter<'endpoint' | 'scope'>;
}

/** Registered once per registry: several brokers in one test process may share one. */
export function createBrokerMetrics(registry: Registry): BrokerMetrics {
  const existing = registry.getSingleMetric('ci_oidc_broker_exchanges_total');
  if (existing) {
    return {
      exchanges: existing as Counter<'endpoint' | 'outcome' | 'reason'>,
      duration: registry.getSingleMetric('ci_oidc_broker_exchange_duration_seconds') as Histogram<'endpoint' | 'outcome'>,
      rateLimited: registry.getSingleMetric('ci_oidc_broker_rate_limited_total') as Counter<'endpoint' | 'scope'>,
    };
  }
  return {
    exchanges: new Counter({
      name: 'ci_oidc_broker_exchanges_total',
      help: 'Broker exchange attempts by endpoint, outcome (allow, deny, error) and reason code',
      labelNames: ['endpoint', 'outcome', 'reason'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'ci_oidc_broker_exchange_duration_seconds',
      help: 'Broker exchange latency by endpoint and outcome',
      labelNames: ['endpoint', 'outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'ci_oidc_broker_rate_limited_total',
      help: 'Requests refused by the broker rate limits, by endpoint and scope (client or issuer)',
      labelNames: ['endpoint', 'scope'] as const,
      registers: [registry],
    }),
  };
}
