import { request } from '../http/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { UpgradeResult } from './result.js';

/**
 * With the nuwax API as server, report each outcome as nuwax-cli does:
 * POST {base_url}/api/v1/clients/services/{service}/upgrade-history. Never fatal: the box is what matters.
 */
export async function reportOutcome(
  config: Config,
  clientId: string | undefined,
  result: UpgradeResult,
  logger: Logger,
): Promise<void> {
  const base = config.server.base_url;
  if (!base || result.status === 'up_to_date') return;
  const service = 'docker_service';
  const url = new URL(
    `api/v1/clients/services/${service}/upgrade-history`,
    base.endsWith('/') ? base : `${base}/`,
  ).toString();
  const from = 'from' in result ? result.from : 'previous_version' in result ? result.previous_version : null;
  const to = 'version' in result ? result.version : null;
  try {
    const response = await request(url, {
      method: 'POST',
      headers: reportHeaders(clientId),
      body: JSON.stringify({
        service_name: service,
        from_version: from,
        to_version: to,
        status: result.status,
        details: result,
      }),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    await response.body.dump();
    if (response.statusCode >= 300)
      logger.warn({ url, status: response.statusCode }, 'the server refused the upgrade report');
  } catch (error) {
    logger.warn({ err: error, url }, 'cannot report the upgrade outcome to the server');
  }
}

function reportHeaders(clientId: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (clientId) headers['x-client-id'] = clientId;
  return headers;
}
