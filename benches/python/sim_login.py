"""What both baselines share: a simple-salesforce session on the
simulator's production org, logged in with client credentials.

simple-salesforce always builds https URLs and the simulator speaks http on
localhost, so a requests adapter rewrites the scheme; everything else is the
library as users run it."""
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce


class HttpForLocalhost(HTTPAdapter):
    def send(self, request, **kwargs):
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, **kwargs)


def connect(sim, client_id, client_secret):
    token = requests.post(
        f"{sim}/production/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id,
              "client_secret": client_secret},
        timeout=60,
    ).json()
    session = requests.Session()
    session.mount("https://", HttpForLocalhost())
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      session=session, version="62.0")
