// A real OpenID Connect provider (oidc-provider) for Freshet's tests.
//
//   node server.js serve --port PORT --keys KEYS.json
//       Serves http://127.0.0.1:PORT as the issuer. KEYS.json is a private JWKS
//       ({"keys": [...]}); the first key signs, all are published at the jwks_uri.
//       Restarting with another file is a key rotation. Prints "ready PORT" once
//       listening; stops on SIGTERM/SIGINT or when stdin closes.
//   node server.js keygen KID
//       Prints {"jwk": <private RSA JWK with kid KID>, "pem": <PKCS#1 private key>}.
//
// Every client uses the client_credentials grant (secret "secret", client_secret_post
// or client_secret_basic) and gets a JWT access token (RS256) whose `sub` is the client
// id and whose `groups` claim is that client's groups. The audience is the requested
// `resource` (default https://freshet.test/api; https://other.test/api is the other
// resource server it knows).
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

// client id -> { groups (a list, or one string, as IdPs send either), ttl seconds }.
const CLIENTS = {
  'freshet-admin': { groups: ['freshet-admins', 'everyone'] },
  'freshet-viewer': { groups: ['freshet-viewers'] },
  'freshet-operator': { groups: 'freshet-operators' },
  'freshet-nogroups': {},
  'freshet-short': { groups: ['freshet-viewers'], ttl: 1 },
};
const DEFAULT_RESOURCE = 'https://freshet.test/api';
const RESOURCES = [DEFAULT_RESOURCE, 'https://other.test/api'];

function keygen(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' });
  process.stdout.write(`${JSON.stringify({ jwk, pem })}\n`);
}

async function serve(port, keysFile) {
  const { default: Provider } = await import('oidc-provider');
  const jwks = JSON.parse(readFileSync(keysFile, 'utf8'));
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    jwks,
    clients: Object.keys(CLIENTS).map((id) => ({
      client_id: id,
      client_secret: 'secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
    })),
    clientAuthMethods: ['client_secret_post', 'client_secret_basic'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => DEFAULT_RESOURCE,
        getResourceServerInfo: async (ctx, resource) => {
          if (!RESOURCES.includes(resource)) throw new Provider.errors.InvalidTarget();
          return { audience: resource, scope: 'api', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    ttl: {
      ClientCredentials: (ctx, token, client) => CLIENTS[client.clientId]?.ttl ?? 600,
    },
    extraTokenClaims: async (ctx, token) => {
      const groups = CLIENTS[token.clientId]?.groups;
      return groups === undefined ? undefined : { groups };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const server = provider.listen(port, '127.0.0.1');
  server.on('listening', () => console.log(`ready ${port}`));
  server.on('error', (err) => {
    console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
    process.exit(1);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The test that started us holds our stdin: when it goes away, so do we.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { port: { type: 'string', default: process.env.PORT }, keys: { type: 'string' } },
});
if (positionals[0] === 'keygen' && positionals[1]) {
  keygen(positionals[1]);
} else if (positionals[0] === 'serve' && values.port && values.keys) {
  await serve(Number(values.port), values.keys);
} else {
  console.error('usage: server.js serve --port PORT --keys KEYS.json | server.js keygen KID');
  process.exit(2);
}
