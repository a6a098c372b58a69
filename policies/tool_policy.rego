# The gateway's tool policy for Open Policy Agent, the same rules as the builtin engine
# (src/policy/builtin-policy.engine.ts), in the same order. Data: policies/data.json, written by
# `npm run policy:data` from gateway.yaml. Serve: `opa run --server policies/`; test: `opa test policies/`.
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
