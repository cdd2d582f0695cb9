// [issue 14] The Gateway API features wsgate supports (GEP-2162), as the GatewayClass status publishes them and the
// conformance suite reads them (test/conformance/run.ts). Each one is claimed only with the suite's tests for it
// passing (docs/conformance/); the table of docs/gateway-api.md says what each means for wsgate.
export const SUPPORTED_FEATURES: readonly string[] = [
  'Gateway',
  'GatewayPort8080',
  'HTTPRoute',
  'HTTPRoute303RedirectStatusCode',
  'HTTPRoute307RedirectStatusCode',
  'HTTPRoute308RedirectStatusCode',
  'HTTPRouteBackendProtocolWebSocket',
  'HTTPRouteBackendTimeout',
  'HTTPRouteHostRewrite',
  'HTTPRouteMethodMatching',
  'HTTPRouteParentRefPort',
  'HTTPRoutePathRedirect',
  'HTTPRoutePathRewrite',
  'HTTPRoutePortRedirect',
  'HTTPRouteQueryParamMatching',
  'HTTPRouteRequestTimeout',
  'HTTPRouteResponseHeaderModification',
  'HTTPRouteSchemeRedirect',
  'ReferenceGrant',
  'TCPRoute',
  'TLSRoute',
];
