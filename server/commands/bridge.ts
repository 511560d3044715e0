/** `passage bridge`: validated options → the pairing token (given, or kept in the config folder) → a listening bridge. */
import { startBridge, type RunningBridge } from '../bridge/bridge.ts';
import { parseBridgeConfig, type BridgeOptionValues } from '../bridge/config.ts';
import { loadOrCreatePairingToken } from '../bridge/pairing.ts';
import { createLogger } from '../common/log.ts';
import { shippedExtensionId } from '../common/paths.ts';
import type { Logger } from 'pino';

export async function startBridgeCommand(values: BridgeOptionValues): Promise<{ bridge: RunningBridge; token: string; logger: Logger }> {
  const config = parseBridgeConfig(values, shippedExtensionId());
  const logger = createLogger(config.logLevel, 'passage-bridge');
  const token = config.token ?? loadOrCreatePairingToken(config.configDir);
  const bridge = await startBridge({ host: config.host, port: config.port, token, allowedExtensions: config.allowedExtensions, logger });
  return { bridge, token, logger };
}
