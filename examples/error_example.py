"""An agent whose tool fails: the trace shows the error where it happened.

The tool raises; the exception passes through the decorators unchanged (the agent span
and the tool span end with status ERROR and an `exception` event), and this script
handles it at the top, like a real program would.

    python examples/error_example.py
"""

from __future__ import annotations

from mv37 import rollout

rollout.init(agent_name="billing_agent", environment="development")


class PaymentDeclinedError(RuntimeError):
    """The payment provider said no."""


@rollout.tool("charge_card")
def charge_card(order_id: str, amount: float) -> dict[str, object]:
    raise PaymentDeclinedError(f"card declined for order {order_id} ({amount:.2f} EUR)")


@rollout.agent("billing_agent", user_id="user-9")
def billing_agent(order_id: str) -> str:
    trace = rollout.current_trace()
    assert trace is not None
    trace.message(role="user", content=f"Please pay order {order_id}")
    charge_card(order_id, 42.5)
    return "paid"


if __name__ == "__main__":
    try:
        billing_agent("ord-1001")
    except PaymentDeclinedError as exc:
        print(f"handled: {exc}")
    finally:
        rollout.shutdown()
