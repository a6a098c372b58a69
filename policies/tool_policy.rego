# The gateway's tool policy for Open Policy Agent, the same rules as the builtin engine
# (src/policy/builtin-policy.engine.ts), in the same order. Data: policies/data.json, written by
# `npm run policy:data` from gateway.yaml. Serve: `opa run --server policies/`; test: `opa test policies/`.
#
# With GATEWAY_POLICY_ENGINE=opa the gateway asks POST $GATEWAY_OPA_URL/v1/data/gateway/tools/decision
# with {"input": {"agent": {"id", "role", "version"}, "tool", "arguments", "argument_keys"}}.
# argument_keys lists every key of the arguments at any depth, folded as the builtin engine folds them
# (Rego cannot map Unicode lookalikes), so forbidden fields are compared with those. Only a boolean
# `allow` is required: a missing requires_approval means false, a missing reason_code becomes allowed
# or denied_by_policy, and a deny's reason_code is the 403's. No answer within GATEWAY_OPA_TIMEOUT_MS,
# unreachable, non-2xx, `{}` (policy not loaded) or no boolean allow → 503 policy_unavailable
# (opa_timeout, opa_unreachable, opa_error_status, opa_undefined_result, opa_malformed_result), and
# nothing runs. The gateway still checks registration, the schema, paths and hosts, and keeps the
# config's requires_approval whatever OPA says; /readyz asks OPA's /health.
# policies/decisions.json is the one decision table for both engines: src/policy/decisions.spec.ts runs
# it through the builtin engine, and tool_policy_test.rego is generated from it (tests fail when stale).
# Not verified here: opa could not be installed where this was built, so these files were written to
# OPA's documented Rego v1 syntax but never run by opa; test/opa.e2e-spec.ts uses a stand-in.
package gateway.tools

import rego.v1

cfg := data.gateway_policy

wildcards := {"x", "X", "*"}

deny(reason) := {"allow": false, "requires_approval": false, "reason_code": reason}

# Deny by default: unknown tools included.
decision := deny("tool_not_registered") if {
	not cfg.tools[input.tool]
} else := deny("agent_version_not_allowed") if {
	not version_allowed
} else := deny("tool_not_allowed_for_role") if {
	not input.agent.role in cfg.tools[input.tool].roles
} else := deny("forbidden_field") if {
	count(forbidden_keys) > 0
} else := {"allow": true, "requires_approval": cfg.tools[input.tool].requires_approval, "reason_code": "allowed"}

# An agent without `versions` may use any version.
version_allowed if not cfg.agents[input.agent.id].versions

version_allowed if {
	some pattern in cfg.agents[input.agent.id].versions
	version_matches(pattern, input.agent.version)
}

# "1.x" / "1.2.*": the parts before the first wildcard match, and the version goes on past it.
version_matches(pattern, version) if {
	wanted := split(pattern, ".")
	actual := split(version, ".")
	some i, part in wanted
	part in wildcards
	every j, w in array.slice(wanted, 0, i) {
		not w in wildcards
		w == actual[j]
	}
	count(actual) > i
}

# No wildcard: an exact match.
version_matches(pattern, version) if {
	wanted := split(pattern, ".")
	actual := split(version, ".")
	count(wanted) == count(actual)
	every j, w in wanted {
		not w in wildcards
		w == actual[j]
	}
}

# Keys at any depth, as the gateway normalizes them (Unicode compatibility forms, lookalike
# characters, case, accents and every non-letter/digit folded) and sends them: input.argument_keys.
forbidden_keys contains key if {
	some key in input.argument_keys
	key in cfg.tools[input.tool].forbidden_fields
}
