"""Python side of the Salesforce peer reads with simple-salesforce: one SOQL query followed
to the end, page by page (`pages`: each page dropped) or keeping every record (`keep`:
query_all). Usage: salesforce_read.py pages|keep <instance-url> <token> <soql>"""
import sys

import requests
from simple_salesforce import Salesforce


class PlainHttp(requests.Session):
    """simple-salesforce always builds https:// URLs; the sandbox speaks plain HTTP on
    127.0.0.1, so the scheme is rewritten (nothing else changes)."""

    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://", "http://", 1), *args, **kwargs)


def main():
    mode, url, token, soql = sys.argv[1:5]
    sf = Salesforce(instance_url=url, session_id=token, version="66.0", session=PlainHttp())
    if mode == "keep":
        result = sf.query_all(soql)
        print(f"records {len(result['records'])}")
        return
    count = 0
    page = sf.query(soql)
    while True:
        count += len(page["records"])
        if page["done"]:
            break
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    print(f"records {count}")


main()
