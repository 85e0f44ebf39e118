"""Python side of the HubSpot peer batch update, with the official SDK (hubspot-api-client):
reads the first n contact ids page by page (limit 100), then sets `jobtitle` on each with
batch updates of 100. Usage: hubspot_update.py <base-url> <token> <n>"""
import sys

from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)


def main():
    url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # `host` points the SDK at the sandbox instead of api.hubapi.com.
    contacts = HubSpot(access_token=token, host=url.rstrip("/")).crm.contacts
    ids, after = [], None
    while len(ids) < n:
        page = contacts.basic_api.get_page(limit=100, after=after, properties=["email"])
        ids.extend(c.id for c in page.results)
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    ids = ids[:n]
    updated = 0
    for i in range(0, len(ids), 100):
        inputs = [
            SimplePublicObjectBatchInput(id=c, properties={"jobtitle": f"Title {c}"})
            for c in ids[i : i + 100]
        ]
        out = contacts.batch_api.update(
            batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
                inputs=inputs
            )
        )
        updated += len(out.results)
    print(f"records {updated}")


main()
