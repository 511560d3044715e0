/** `passage bridge`: validated options → the pairing token (given, or kept in the config folder) → a listening bridge. */
import { startBridge, type RunningBridge } from '../bridge/bridge.ts';
import { parseBridgeConfig, type BridgeOptionValues } from '../bridge/config.ts';
import { loadOrCreatePairingToken } from '../bridge/pairing.ts';
import { PROXY_USER } from '../../shared/bridge-credential.ts';
import { createLogger } from '../common/log.ts';
import { shippedExtensionId } from '../common/paths.ts';
import path from 'node:path';
import type { Logger } from 'pino';

export async function startBridgeCommand(values: BridgeOptionValues): Promise<{ bridge: RunningBridge; token: string; tokenFile: string | null; logger: Logger }> {
  const config = parseBridgeConfig(values, shippedExtensionId());
  const logger = createLogger(config.logLevel, 'passage-bridge');
  const token = config.token ?? loadOrCreatePairingToken(config.configDir);
  const bridge = await startBridge({ host: config.host, port: config.port, token, allowedExtensions: config.allowedExtensions, allowedFirefox: config.allowedFirefox, logger });
  return { bridge, token, tokenFile: config.token === null ? path.join(config.configDir, 'pairing-token') : null, logger };
}

/**
 * What a user of `passage bridge` needs: the pairing token (and where it is kept) for the
 * extension's options, and the proxy credential other tools (curl) present.
 */
export function bridgeLines(url: string, token: string, tokenFile: string | null): string {
  return [
    `Pairing token: ${token}   (${tokenFile ? `kept in ${tokenFile}` : 'from --token'}; paste it into Passage's options)`,
    `Other tools use the proxy with the user ${PROXY_USER} and the pairing token: curl --proxy ${url} --proxy-user ${PROXY_USER}:${token} …`,
    '',
  ].join('\n');
}
