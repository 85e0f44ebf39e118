"""Python side of the HubSpot peer read: every contact, page by page (limit 100), with the
official SDK (hubspot-api-client). Usage: hubspot_read.py <base-url> <token> <properties>"""
import sys

from hubspot import HubSpot


def main():
    url, token, properties = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    # `host` points the SDK at the sandbox instead of api.hubapi.com.
    basic = HubSpot(access_token=token, host=url.rstrip("/")).crm.contacts.basic_api
    after, count = None, 0
    while True:
        page = basic.get_page(limit=100, after=after, properties=properties)
        count += len(page.results)
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    print(f"records {count}")


main()
