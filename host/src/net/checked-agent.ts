/**
 * An undici dispatcher whose every connection first passes the address
 * policy (net-policy.ts), for HTTP the host makes with undici's `fetch` on
 * someone else's say-so (a registry named in a deploy request).
 *
 * The check sits in the connector, not before the request, because a
 * request is not the only thing that opens a connection: a redirect (which
 * `fetch` follows by itself), a token realm and a pooled origin all connect
 * through here, so each one is judged where it connects. For each new
 * connection the destination's name is resolved once, every address judged,
 * and the socket opened to the checked address, with the TLS server name
 * kept as the name, so the certificate is still verified against it and a
 * DNS answer that changes after the check (rebinding) reaches nothing.
 * Pooled connections were checked when they were opened.
 */
import { Agent, buildConnector } from "undici";
import {
  type AddressKind,
  checkDestination,
  type Destination,
  type Exemption,
  isAddressLiteral,
  type Resolve,
} from "./net-policy.ts";

export interface CheckedAgentOptions {
  resolve: Resolve;
  exempt: Exemption;
  /** The error a refused connection fails with: the caller's own catalog code and message. */
  refused: (destination: Destination, refusal: { address: string; kind: AddressKind }) => Error;
}

export function checkedAgent(options: CheckedAgentOptions): Agent {
  const open = buildConnector({});
  const connect: buildConnector.connector = (target, callback) => {
    const destination: Destination = {
      hostname: target.hostname,
      port: Number(target.port) || (target.protocol === "https:" ? 443 : 80),
    };
    checkDestination(destination, options.resolve, options.exempt).then(
      (checked) => {
        if (!checked.allowed) {
          callback(options.refused(destination, checked), null);
          return;
        }
        const servername = target.servername || (isAddressLiteral(target.hostname) ? undefined : target.hostname);
        open({ ...target, hostname: checked.address, ...(servername ? { servername } : {}) }, callback);
      },
      (error: Error) => callback(error, null),
    );
  };
  return new Agent({ connect });
}
